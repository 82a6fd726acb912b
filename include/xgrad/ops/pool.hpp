// 2-D pooling on NCHW tensors: max, average and adaptive average, as
// torch.nn.functional.max_pool2d / avg_pool2d / adaptive_avg_pool2d (floor mode, no
// dilation). Each loop runs over one contiguous H×W plane at a time; the N·C planes are split
// across get_num_batch_threads() threads (runtime.hpp). See docs/cnn.md.
#pragma once

#include "xgrad/ops/conv.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad {

/// Max pooling with stride = kernel and no padding: max_pool2d(x, k) = max_pool2d(x, k, k, 0).
Tensor max_pool2d(const Tensor& input, Size2 kernel);

/// Max pooling: out[n, c, y, x] = max over the window rows y·sH − pH + [0, kH) and columns
/// x·sW − pW + [0, kW), clipped to the input (padding never wins, as -inf padding in torch).
///
/// Shapes: input [N, C, H, W] -> [N, C, OH, OW], OH = (H + 2·pH − kH) / sH + 1 (floor), OW
/// likewise. float32 or float64.
///
/// Gradient: each output's gradient goes to one input element, the one torch's CPU kernel
/// selects: scanning the window in row-major order from a running maximum of −inf, an element
/// replaces the current choice when it is greater (`>`) or NaN. So among tied maxima the
/// first in row-major window order wins; among NaNs the last; a window of −infs picks its
/// first element. Windows that overlap (stride < kernel) add their gradients. Higher orders:
/// the backward (a scatter by the chosen indices) is linear in the output gradient, with the
/// gather by the same indices as its own gradient, and zero derivative in the input (the
/// choice is piecewise constant); forward mode gathers the input's tangent likewise.
///
/// Throws xgrad::Error naming "max_pool2d" and the input shape for: input not 4-D, kernel or
/// stride < 1, negative padding, padding larger than half the kernel (torch's rule), and a
/// kernel larger than the padded input.
Tensor max_pool2d(const Tensor& input, Size2 kernel, Size2 stride, Size2 padding = 0);

/// Average pooling with stride = kernel and no padding.
Tensor avg_pool2d(const Tensor& input, Size2 kernel);

/// Average pooling with count_include_pad = true (torch's default): each output is the sum of
/// the window's input elements divided by kH·kW, zero padding counted in the divisor.
///
/// Shapes, dtypes and errors as max_pool2d (op name "avg_pool2d"). Gradient: g / (kH·kW) to
/// every input element of the window (summed over overlapping windows) — the adjoint of the
/// pool, whose own gradient is the pool again: differentiable to any order. Forward mode: the
/// pool of the tangent.
Tensor avg_pool2d(const Tensor& input, Size2 kernel, Size2 stride, Size2 padding = 0);

/// Adaptive average pooling to a fixed output size (torch's adaptive_avg_pool2d): output row y
/// averages input rows [⌊y·H/OH⌋, ⌈(y+1)·H/OH⌉), columns likewise, so windows cover the
/// input and may overlap by one row or column.
///
/// Shapes: input [N, C, H, W] with H, W ≥ 1 -> [N, C, OH, OW], output_size = {OH, OW}
/// (an integer means square). float32 or float64. Gradient: g / window size to each element
/// of the window (the pool's adjoint; derivatives of every order and forward mode as
/// avg_pool2d). Throws xgrad::Error naming "adaptive_avg_pool2d" and the shapes for an input
/// that is not 4-D or has an empty H or W, and a negative output size.
Tensor adaptive_avg_pool2d(const Tensor& input, Size2 output_size);

}  // namespace xgrad
