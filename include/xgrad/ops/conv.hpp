// 2-D convolution on NCHW tensors, through im2col and one BLAS GEMM per image and group
// (Chellapilla, Puri & Simard 2006, "High Performance Convolutional Neural Networks for
// Document Processing"), as torch's CPU "slow_conv2d" does. Images of a batch are split
// across get_num_batch_threads() threads, each with its own reusable im2col buffer and a
// single-threaded GEMM. See docs/cnn.md.
#pragma once

#include <cstdint>
#include <ostream>

#include "xgrad/runtime.hpp"  // set_num_batch_threads
#include "xgrad/tensor.hpp"

namespace xgrad {

/// A (height, width) pair for kernel sizes, strides, paddings and dilations. An integer means
/// the same value for both: `2` is {2, 2}; `{2, 1}` is height 2, width 1 (torch's
/// ExpandingArray<2>).
struct Size2 {
  std::int64_t h = 0, w = 0;
  Size2() = default;
  Size2(std::int64_t v) : h(v), w(v) {}  // NOLINT(google-explicit-constructor)
  Size2(std::int64_t h_, std::int64_t w_) : h(h_), w(w_) {}
  friend bool operator==(const Size2&, const Size2&) = default;
  /// Prints "3x3" (height x width), as error messages show kernel sizes and strides.
  friend std::ostream& operator<<(std::ostream& os, const Size2& s) {
    return os << s.h << "x" << s.w;
  }
};

/// Cross-correlation (torch.nn.functional.conv2d):
///   out[n, o, y, x] = bias[o] + Σ_{c, i, j} weight[o, c, i, j] ·
///                     in[n, g·C/groups + c, y·sH − pH + i·dH, x·sW − pW + j·dW]
/// with g = o / (O/groups) and zeros outside the input (zero padding).
///
/// Shapes: input [N, C, H, W], weight [O, C/groups, kH, kW], bias [O] or undefined ->
/// [N, O, OH, OW] with OH = (H + 2·pH − dH·(kH−1) − 1) / sH + 1 (floor), OW likewise.
/// float32 or float64 (all operands the same dtype). Differentiable in input, weight and
/// bias: grad input = col2im(Wᵀ·g), grad weight = Σ_n g·colsᵀ, grad bias = Σ_{n,y,x} g.
/// Both gradients are again convolutions of the same geometry (each adjoint to conv2d in one
/// argument), recorded under create_graph: conv2d is differentiable to any order. Forward
/// mode: the tangent is conv2d(ẋ, weight, ḃ) + conv2d(input, ẇ).
///
/// Throws xgrad::Error naming "conv2d" and the shapes for: input not 4-D or weight not 4-D,
/// a channel mismatch (weight.size(1)·groups != C), groups < 1 or not dividing C and O,
/// stride or dilation < 1, negative padding, an empty kernel, a bias not of shape [O], mixed
/// dtypes, and a (dilated) kernel larger than the padded input.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
              Size2 stride = 1, Size2 padding = 0, Size2 dilation = 1, std::int64_t groups = 1);

}  // namespace xgrad
