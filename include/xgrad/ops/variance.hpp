// Variance and standard deviation (torch.var / torch.std with `correction`).
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Variance over the dimensions `dim` (all of them when empty; negative dims count from the
/// end): Σ(x − mean)² / max(N − correction, 0), N the number of elements reduced; correction 1
/// is Bessel's (unbiased) estimate and torch's default, 0 the population variance. N −
/// correction <= 0 gives inf where the sum is positive and NaN where it is 0, as torch.
/// Computed in two passes (mean, then Σ(x − mean)²), float32 accumulating in float64, so data
/// with a large common offset keep their digits. torch 1.13 is wrong there in float32: for
/// x = 1e7 + [0, 1, ..., 7] (exact float32 numbers) torch.var(x) gives 6.2857 where the
/// variance is 6; xgrad gives 6.
/// Gradient: grad·2(x − mean)/(N − correction); differentiable to any order (written with
/// xgrad ops) and in forward mode (2·Σ(x − mean)·dx/(N − correction)).
/// Shapes: input [...] float32/float64 -> input's shape without `dim` (size 1 each when
/// keepdim). Throws for a dim out of range or given twice, a negative correction or a
/// non-float input ("var: expected a float32 or float64 tensor, got int64").
Tensor var(const Tensor& input, const Shape& dim = {}, double correction = 1.0,
           bool keepdim = false);

/// √var(input, dim, correction, keepdim) (torch.std). Gradient grad·(x − mean)/((N −
/// correction)·std); where std is 0 (a constant slice) the gradient is 0 (as torch 1.13; the
/// one-sided derivatives there are ±1/√(N − correction) per direction and 0 is the
/// subgradient of least norm), and the recorded backward has no 0·inf in it (a safe
/// denominator), so second derivatives there are finite too. Shapes, errors: as var.
Tensor std(const Tensor& input, const Shape& dim = {}, double correction = 1.0,
           bool keepdim = false);

}  // namespace xgrad
