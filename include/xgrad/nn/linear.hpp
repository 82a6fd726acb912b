// Linear: y = x·Wᵀ + b.
#pragma once

#include <optional>

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

struct LinearOptions {
  bool bias = true;
  /// When set, weights are drawn from N(0, init_std²) and the bias is zero instead of torch's
  /// default (Kaiming-uniform weights with a = √5, i.e. U(±1/√in), and bias U(±1/√in)).
  std::optional<double> init_std = std::nullopt;
  Dtype dtype = default_dtype();
};

/// A fully connected layer (torch.nn.Linear). weight [out, in], bias [out].
/// forward: x [..., in] -> [..., out]; throws xgrad::Error naming the shapes on a mismatch.
class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, LinearOptions options = {});
  Tensor weight, bias;
  std::string type_name() const override { return "Linear"; }
  /// gelu(this(x)) as one op (linear_gelu: the product never goes to memory), its nodes in
  /// this module's scope; runs no hooks (a caller with hooks to honour calls operator()).
  Tensor forward_gelu(const Tensor& x);

 protected:
  Tensor forward(const Tensor& x) override;
};

}  // namespace xgrad::nn
