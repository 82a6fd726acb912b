#include "xgrad/nn/layer_norm.hpp"

#include <cmath>

#include "xgrad/nn/init.hpp"
#include "xgrad/ops/layer_norm.hpp"

namespace xgrad::nn {

LayerNorm::LayerNorm(Shape normalized_shape, LayerNormOptions options)
    : normalized_shape_(std::move(normalized_shape)), eps_(options.eps) {
  check(!normalized_shape_.empty(), "LayerNorm: normalized_shape must not be empty");
  for (std::int64_t s : normalized_shape_)
    check(s > 0, "LayerNorm: normalized_shape must be positive, got ", normalized_shape_);
  check(eps_ > 0 && std::isfinite(eps_), "LayerNorm: eps must be > 0, got ", eps_);
  if (options.elementwise_affine) {
    register_parameter("weight", weight, ones(normalized_shape_, options.dtype));
    register_parameter("bias", bias, zeros(normalized_shape_, options.dtype));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  return layer_norm(x, normalized_shape_, weight, bias, eps_);
}

}  // namespace xgrad::nn
