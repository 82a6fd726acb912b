// Comparisons: eq, ne, lt, le, gt, ge and the operators == != < <= > >=, with a tensor
// (broadcasting) or a scalar on either side. They return bool tensors of the broadcast shape,
// never differentiable (no grad_fn even when an input requires grad), as in torch.
//
// Shapes: two tensors broadcast as NumPy does ([3,1] < [1,4] -> [3,4]) and must have the same
// dtype (any of the four); a scalar compares with every element -> the tensor's shape.
// A scalar is converted to a float tensor's dtype first (torch's rule: float32 0.1f == 0.1 is
// true); int64 and bool tensors compare exactly with an integral scalar and in double with a
// fractional one (tensor({0}, int64) < 0.5 is true). NaN compares unequal to everything (ne
// gives true). Errors (xgrad::Error): "lt: shapes [2,3] and [4] cannot be broadcast",
// "eq: expected tensors of the same dtype, got float32 [2] and float64 [2]".
// Source: torch.eq / torch.lt ... and ATen's comparison kernels.
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// a == b, a != b, a < b, a <= b, a > b, a >= b, elementwise (broadcasting) -> bool.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

/// Each element of a compared with the scalar b -> bool of a's shape.
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);

/// The operators: tensor with tensor, tensor with scalar and scalar with tensor (2 < x is
/// gt(x, 2)). Each returns a bool Tensor, as in libtorch, never a C++ bool.
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, double b);
Tensor operator!=(const Tensor& a, double b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);
Tensor operator==(double a, const Tensor& b);
Tensor operator!=(double a, const Tensor& b);
Tensor operator<(double a, const Tensor& b);
Tensor operator<=(double a, const Tensor& b);
Tensor operator>(double a, const Tensor& b);
Tensor operator>=(double a, const Tensor& b);

}  // namespace xgrad
