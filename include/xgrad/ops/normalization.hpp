// Batch normalisation (Ioffe & Szegedy 2015), as torch.nn.functional.batch_norm.
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Normalises each channel c of x over the batch and spatial positions:
///   y = (x − μ_c) / √(σ²_c + eps) · weight_c + bias_c.
/// training = true: μ and σ² are the batch's mean and biased variance (over N and the spatial
/// dimensions, M values per channel); when running_mean / running_var are defined they are
/// updated in place (under no_grad, bumping their version), as torch does:
///   running_mean ← (1 − momentum)·running_mean + momentum·μ
///   running_var  ← (1 − momentum)·running_var  + momentum·σ²·M/(M − 1)   (unbiased)
/// training = false: μ and σ² are running_mean and running_var (both required).
/// weight and bias may be undefined (then 1 and 0). Float32 statistics accumulate in float64.
/// Gradients go to x, weight and bias; the running statistics are buffers and never get one.
/// Differentiable to any order (a recorded backward differentiates through the batch
/// statistics in training; torch's batch_norm double backward) and in forward mode:
/// dy = dx̂·w + x̂·dw + db, dx̂ = invstd·(dx − mean(dx) − x̂·mean(dx·x̂)) in training, dx·invstd
/// in evaluation.
/// Shapes: x [N, C] or [N, C, *] (e.g. [N, C, H, W]); running_mean, running_var, weight, bias
/// [C]; all of x's float dtype -> x's shape.
/// Throws when x has fewer than 2 dimensions, a [C] tensor has another shape or dtype, a running
/// statistic requires grad, training sees only one value per channel ("batch_norm: expected more
/// than 1 value per channel when training, got input of shape [1,3]"), or running statistics
/// are missing in evaluation mode.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);

}  // namespace xgrad
