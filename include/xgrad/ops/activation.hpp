// Activations and the softmax family. Shapes: output shape = input shape; float32/float64.
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// max(a, 0). Gradient 1 where a > 0, 0 where a <= 0 (torch's convention at 0).
Tensor relu(const Tensor& a);
/// a where a > 0, slope·a elsewhere. Gradient at 0 is slope (torch's convention).
Tensor leaky_relu(const Tensor& a, double negative_slope = 0.01);
/// Hyperbolic tangent; gradient 1 - tanh².
Tensor tanh(const Tensor& a);
/// Logistic function 1/(1+e^-a), computed without overflow; gradient s(1-s).
Tensor sigmoid(const Tensor& a);
/// exp(a - max) / Σ exp(a - max) along `axis` (numerically stable for any finite input).
Tensor softmax(const Tensor& a, std::int64_t axis = -1);
/// a - max - log Σ exp(a - max) along `axis`: finite for logits such as [1000, -1000, 0].
Tensor log_softmax(const Tensor& a, std::int64_t axis = -1);

/// GELU, exact (erf) form — torch's default (approximate='none'):
/// x·Φ(x) = x/2·(1 + erf(x/√2)). Gradient Φ(x) + x·φ(x), φ(x) = e^(-x²/2)/√(2π).
/// Hendrycks & Gimpel 2016, "Gaussian Error Linear Units".
Tensor gelu(const Tensor& a);

/// gelu(linear(x, weight, bias)) in one op, the first half of a transformer's GELU MLP:
/// x [..., in], weight [out, in], bias [out] (or undefined) -> [..., out], the same values.
/// When it is trained (an input requires grad, x contiguous, at least 65,536 outputs) the
/// product h = x·weightᵀ + bias is made in blocks of rows that stay in the cache and mapped to
/// gelu(h) and gelu'(h) at once, so h is never written to memory nor kept for backward; the
/// backward is g ⊙ gelu'(h) (the bias gradient summed in the same pass) into linear's two
/// products, with create_graph the same vjp with ops (h recomputed), differentiable to any
/// order. Otherwise (no grad, vmap, forward-mode tangents) it is the composition.
/// Throws as linear does for mismatched shapes or dtypes.
/// Source: linear as torch.nn.functional.linear (x·Wᵀ + b), gelu as here (exact erf form,
/// Hendrycks & Gimpel 2016); the blocking is the usual GEMM-epilogue fusion.
Tensor linear_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
/// Softplus (torch.nn.functional.softplus): log(1 + e^(beta·x))/beta, and x itself where
/// beta·x > threshold (there the two differ by less than e^(-threshold)/beta). Gradient
/// sigmoid(beta·x), exactly 1 above the threshold. Throws when beta is 0.
Tensor softplus(const Tensor& a, double beta = 1.0, double threshold = 20.0);
/// ELU (Clevert et al. 2015): x where x > 0, alpha·(e^x − 1) elsewhere. Gradient 1 where
/// x > 0, alpha·e^x where x <= 0 (so alpha at x = 0, torch's convention).
Tensor elu(const Tensor& a, double alpha = 1.0);
/// Hardtanh (torch.nn.functional.hardtanh): min(max(x, min_val), max_val); NaN stays NaN.
/// Gradient 1 where min_val < x < max_val and 0 elsewhere, bounds included (torch's
/// hardtanh_backward; clamp instead passes the gradient at its bounds). Throws when
/// min_val > max_val ("hardtanh: min_val 1 is greater than max_val -1").
Tensor hardtanh(const Tensor& a, double min_val = -1.0, double max_val = 1.0);
/// ReLU6 (torch.nn.functional.relu6) = hardtanh(x, 0, 6): min(max(x, 0), 6). Gradient 1 for
/// 0 < x < 6, 0 elsewhere (0 at x = 0 and at x = 6, as torch).
Tensor relu6(const Tensor& a);
/// Hardswish (torch.nn.functional.hardswish; Howard et al. 2019, "Searching for MobileNetV3"):
/// x·relu6(x + 3)/6 — 0 for x <= -3, x for x >= 3, x(x + 3)/6 between; NaN stays NaN and -inf
/// gives 0 (torch: NaN). Gradient 0 for x < -3, 1 for x > 3, (2x + 3)/6 on [-3, 3] with both
/// bounds (torch 1.13: -1/2 at -3, 3/2 at 3); second derivative 1/3 on (-3, 3), else 0.
/// Throws for a non-float tensor ("hardswish: expected a float32 or float64 tensor, ...").
Tensor hardswish(const Tensor& a);

}  // namespace xgrad
