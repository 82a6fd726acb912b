// Layer normalisation (Ba, Kiros & Hinton 2016), as torch.nn.functional.layer_norm.
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Normalises x over its last len(normalized_shape) dimensions:
///   y = (x − μ) / √(σ² + eps) · weight + bias,
/// μ and σ² the mean and biased variance (divisor M = ∏ normalized_shape) of each slice. weight
/// and bias may be undefined (then 1 and 0). Float32 statistics accumulate in float64 (two
/// passes: the mean, then Σ(x − μ)², so a large common offset does not cancel). torch 1.13
/// loses digits there in float32: for x = 1e4 + [0, 0.25, 0.5, 0.75] it gives
/// [-1.3422, -0.4479, 0.4465, 1.3409] where the exact result is ±1.3416, ±0.4472; xgrad gives
/// the exact one (to float32 rounding).
/// Gradients go to x, weight and bias. Differentiable to any order (the backward is written
/// with xgrad ops when it is recorded — create_graph — and is a fused one-pass kernel
/// otherwise) and in forward mode: dy = dx̂·w + x̂·dw + db with
/// dx̂ = invstd·(dx − mean(dx) − x̂·mean(dx·x̂)).
/// Shapes: x [*, normalized_shape...]; weight, bias normalized_shape; float32/float64, all of
/// one dtype -> x's shape.
/// Throws when normalized_shape is empty or is not the trailing shape of x ("layer_norm:
/// normalized_shape [4] does not match the last dimensions of input of shape [2,3]"), when
/// weight or bias has another shape or dtype, or for a non-float input.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

}  // namespace xgrad
