// The raw pooling kernels (pool_kernels.cpp) behind the differentiable ops of pool.cpp: max
// pooling with its indices, the scatter and gather by those indices, and the average pools and
// their adjoints. They read and write data only: no autograd here. Shared by pool.cpp only.
// Not installed.
#pragma once

#include <cstdint>

#include "xgrad/tensor.hpp"

namespace xgrad::detail {

/// The geometry of one pooling call: input [N, C, H, W] -> output [N, C, OH, OW], with the
/// window, stride and padding (unused by the adaptive pool, whose windows follow from H/OH).
struct PoolGeom {
  std::int64_t N = 0, C = 0, H = 0, W = 0;
  std::int64_t kH = 1, kW = 1, sH = 1, sW = 1, pH = 0, pW = 0;
  std::int64_t OH = 0, OW = 0;
  std::int64_t planes() const { return N * C; }
  std::int64_t in_plane() const { return H * W; }
  std::int64_t out_plane() const { return OH * OW; }
  Shape input_shape() const { return {N, C, H, W}; }
  Shape output_shape() const { return {N, C, OH, OW}; }
};

/// Max pooling of x [N, C, H, W] (float32 or float64, any strides) -> [N, C, OH, OW]. When idx
/// is non-null it receives, for each output (row-major), the flat index into its H·W input
/// plane of the element chosen (torch's CPU rule: the first maximum, the last NaN).
Tensor max_pool_kernel(const PoolGeom& g, const Tensor& x, std::int32_t* idx);

/// The adjoint of gathering at idx: gy [N, C, OH, OW] -> gx [N, C, H, W], zero except at the
/// indexed elements, where the outputs' values are added (max pooling's backward).
Tensor max_pool_scatter_kernel(const PoolGeom& g, const Tensor& gy, const std::int32_t* idx);

/// t [N, C, H, W] -> [N, C, OH, OW]: the elements at idx (max pooling by the stored indices).
Tensor max_pool_gather_kernel(const PoolGeom& g, const Tensor& t, const std::int32_t* idx);

/// Average pooling (count_include_pad) or, when adaptive, adaptive average pooling of x
/// [N, C, H, W] -> [N, C, OH, OW].
Tensor avg_pool_kernel(const PoolGeom& g, const Tensor& x, bool adaptive);

/// The adjoint of avg_pool_kernel: gy [N, C, OH, OW] -> [N, C, H, W], each output's value
/// divided by its window's divisor and added to every element of the window.
Tensor avg_pool_backward_kernel(const PoolGeom& g, const Tensor& gy, bool adaptive);

}  // namespace xgrad::detail
