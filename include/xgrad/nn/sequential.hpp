// Sequential: children applied in order, named by index ("0.weight", "2.bias").
#pragma once

#include <initializer_list>
#include <memory>

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// Applies its children in order (torch.nn.Sequential). Children are named "0", "1", ...
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  /// Appends a module; returns *this for chaining.
  Sequential& push_back(std::shared_ptr<Module> m);
  std::size_t size() const { return children().size(); }
  std::string type_name() const override { return "Sequential"; }

 protected:
  Tensor forward(const Tensor& x) override;
};

}  // namespace xgrad::nn
