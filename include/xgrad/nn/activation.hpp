// Activation modules, for use in Sequential. Shapes: output = input.
#pragma once

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// max(x, 0).
class ReLU : public Module {
 public:
  std::string type_name() const override { return "ReLU"; }

 protected:
  Tensor forward(const Tensor& x) override;
};

/// tanh(x).
class Tanh : public Module {
 public:
  std::string type_name() const override { return "Tanh"; }

 protected:
  Tensor forward(const Tensor& x) override;
};

/// 1 / (1 + e^-x).
class Sigmoid : public Module {
 public:
  std::string type_name() const override { return "Sigmoid"; }

 protected:
  Tensor forward(const Tensor& x) override;
};

/// x·Φ(x), the exact (erf) GELU (torch.nn.GELU with approximate='none'; the gelu op).
class GELU : public Module {
 public:
  std::string type_name() const override { return "GELU"; }

 protected:
  Tensor forward(const Tensor& x) override;
};

}  // namespace xgrad::nn
