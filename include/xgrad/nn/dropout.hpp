// Dropout as a module: active in training mode, the identity in evaluation mode.
#pragma once

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// torch.nn.Dropout: in training mode (the default) zeroes each element with probability p,
/// drawing the mask from xgrad::default_generator(), and scales the rest by 1/(1−p); after
/// eval() it returns its input unchanged. See xgrad::dropout (ops/dropout.hpp).
/// forward: x [...] float -> x's shape. Throws xgrad::Error unless 0 <= p <= 1.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  double p() const { return p_; }
  std::string type_name() const override { return "Dropout"; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  double p_;
};

}  // namespace xgrad::nn
