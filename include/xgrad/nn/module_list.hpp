// ModuleList: a list of child modules, named by index ("0.weight", "1.self_attn.in_proj_bias").
#pragma once

#include <memory>
#include <vector>

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// Holds modules in a list (torch.nn.ModuleList): they are registered as children "0", "1",
/// ..., so their parameters appear in parameters() and state_dict() under torch's names, but,
/// unlike Sequential, the list has no forward of its own — the owner calls its entries (a
/// ModuleList called as a module throws xgrad::Error). Typed access: at<T>(i).
class ModuleList : public Module {
 public:
  ModuleList() = default;
  explicit ModuleList(std::vector<std::shared_ptr<Module>> modules);
  /// Appends a module, named by its position; returns *this. Throws for a null module.
  ModuleList& push_back(std::shared_ptr<Module> m);
  std::size_t size() const { return children().size(); }
  /// The i-th module. Throws xgrad::Error for i >= size().
  Module& operator[](std::size_t i) const;
  /// The i-th module as a T; throws xgrad::Error for i >= size() or another type.
  template <class T>
  T& at(std::size_t i) const {
    auto* p = dynamic_cast<T*>(&(*this)[i]);
    check(p != nullptr, "ModuleList: entry ", i, " is a ", (*this)[i].type_name(),
          ", not the type asked for");
    return *p;
  }
  auto begin() const { return children().begin(); }
  auto end() const { return children().end(); }
  std::string type_name() const override { return "ModuleList"; }

 protected:
  /// Throws: a ModuleList is a container, not a layer (as torch's).
  Tensor forward(const Tensor& x) override;
};

}  // namespace xgrad::nn
