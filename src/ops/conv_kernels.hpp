// The raw conv2d kernels (im2col + GEMM, conv_kernels.cpp) behind the differentiable ops of
// conv.cpp: the forward, and the fused backward that computes the input, weight and bias
// gradients in one pass over the batch. They read and write data only: no autograd here.
// Shared by conv.cpp only. Not installed.
#pragma once

#include <cstdint>

#include "xgrad/tensor.hpp"

namespace xgrad::detail {

/// The geometry of one conv2d call: input [N, C, H, W], weight [O, C/groups, kH, kW], output
/// [N, O, OH, OW], with its strides, paddings, dilations and groups. The ops of its backward
/// (and of their backwards) run with the same geometry.
struct ConvGeom {
  std::int64_t N = 0, C = 0, H = 0, W = 0, O = 0, kH = 0, kW = 0;
  std::int64_t sH = 1, sW = 1, pH = 0, pW = 0, dH = 1, dW = 1, groups = 1;
  std::int64_t OH = 0, OW = 0;
  std::int64_t Cg() const { return C / groups; }
  std::int64_t Og() const { return O / groups; }
  std::int64_t K() const { return Cg() * kH * kW; }  // rows of the im2col matrix
  std::int64_t P() const { return OH * OW; }         // its columns: output pixels
  // 1x1 kernel, stride 1, no padding: the input plane block is the im2col matrix itself.
  bool pointwise() const { return kH == 1 && kW == 1 && sH == 1 && sW == 1 && pH == 0 && pW == 0; }
  Shape input_shape() const { return {N, C, H, W}; }
  Shape weight_shape() const { return {O, Cg(), kH, kW}; }
  Shape output_shape() const { return {N, O, OH, OW}; }
};

/// conv2d's values: out [N, O, OH, OW] from x [N, C, H, W], w [O, C/groups, kH, kW] and b [O]
/// (undefined: no bias). Any strides; float32 or float64, one dtype for all.
Tensor conv_forward_kernel(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& b);

/// The gradients of conv2d for the output gradient gy [N, O, OH, OW]: input (the transposed
/// convolution of gy with w, col2im(Wᵀ·gy)), weight (the correlation of x with gy,
/// Σ_n gy·colsᵀ) and bias (Σ_{n,y,x} gy), each only when asked for (else undefined), all in
/// one pass over the batch. x is read only for the weight gradient, w only for the input
/// gradient (either may be undefined when not read). The weight and bias sums are added up in
/// a fixed chunk order: the same bits with any number of threads.
struct ConvGrads {
  Tensor input, weight, bias;
};
ConvGrads conv_backward_kernel(const ConvGeom& g, const Tensor& gy, const Tensor& x,
                               const Tensor& w, bool need_input, bool need_weight, bool need_bias);

}  // namespace xgrad::detail
