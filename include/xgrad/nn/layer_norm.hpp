// LayerNorm: normalisation over the last dimensions of each sample.
#pragma once

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

struct LayerNormOptions {
  double eps = 1e-5;
  /// A learned weight (ones) and bias (zeros) of normalized_shape, as torch's
  /// elementwise_affine.
  bool elementwise_affine = true;
  Dtype dtype = default_dtype();
};

/// torch.nn.LayerNorm (Ba, Kiros & Hinton 2016, "Layer Normalization"):
///   y = (x − E[x]) / √(Var[x] + eps) · weight + bias
/// with the mean and the biased variance taken over the last normalized_shape.size()
/// dimensions of x (the layer_norm op). Parameters `weight` and `bias`, shape normalized_shape
/// (when elementwise_affine). forward: x [..., *normalized_shape] -> the same shape.
/// Throws xgrad::Error for an empty normalized_shape or a non-positive size, eps <= 0, and (in
/// forward, from the op) an input whose trailing dimensions are not normalized_shape.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, LayerNormOptions options = {});
  explicit LayerNorm(std::int64_t normalized_size, LayerNormOptions options = {})
      : LayerNorm(Shape{normalized_size}, options) {}
  Tensor weight, bias;
  const Shape& normalized_shape() const { return normalized_shape_; }
  double eps() const { return eps_; }
  std::string type_name() const override { return "LayerNorm"; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  Shape normalized_shape_;
  double eps_;
};

}  // namespace xgrad::nn
