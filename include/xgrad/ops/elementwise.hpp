// Elementwise math with NumPy broadcasting. Each op records a node when an input requires
// grad; its backward sums the gradient back to each input's own shape.
//
// Shapes: binary ops broadcast as NumPy does ([3,1] + [1,4] -> [3,4], [4] + [2,3,4] -> [2,3,4]);
// both operands must have the same dtype (float32 or float64). Scalar operands take the
// tensor's dtype. Errors (xgrad::Error): "add: shapes [2,3] and [4] cannot be broadcast",
// "mul: expected tensors of the same dtype, got float32 [2] and float64 [2]".
#pragma once

#include "xgrad/ops/comparison.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad {

/// a + b (broadcasting).
Tensor add(const Tensor& a, const Tensor& b);
/// a - b (broadcasting).
Tensor sub(const Tensor& a, const Tensor& b);
/// a * b, elementwise (broadcasting).
Tensor mul(const Tensor& a, const Tensor& b);
/// a / b, elementwise (broadcasting). d/db = -a/b².
Tensor div(const Tensor& a, const Tensor& b);
/// -a.
Tensor neg(const Tensor& a);
/// e^a.
Tensor exp(const Tensor& a);
/// Natural logarithm; -inf at 0 and NaN below, as IEEE (and torch) give.
Tensor log(const Tensor& a);
/// Square root. Gradient 1/(2√a): +inf at 0, as torch.
Tensor sqrt(const Tensor& a);
/// a^b elementwise (broadcasting). d/da = b·a^(b-1); d/db = a^b·ln a (taken as 0 where a = 0
/// and b ≥ 0, as torch).
Tensor pow(const Tensor& a, const Tensor& b);
/// a^exponent with a scalar exponent. d/da = exponent·a^(exponent-1).
Tensor pow(const Tensor& a, double exponent);
/// |a|. Gradient sign(a), 0 at 0 (torch's convention).
Tensor abs(const Tensor& a);
/// Sign of each element: -1, 0 or 1 (torch.sign), in a's dtype (float32, float64 or int64;
/// bool returns a copy). NaN and -0 give 0, as torch 1.13. Shapes: [...] -> the same shape.
/// Gradient 0 everywhere (recorded, so the result requires grad when a does, as in torch).
Tensor sign(const Tensor& a);
/// min(max(a, lo), hi). Gradient 1 where lo ≤ a ≤ hi (bounds included, as torch), else 0.
/// Pass ±infinity for a one-sided clamp. Throws when lo > hi.
Tensor clamp(const Tensor& a, double lo, double hi);
/// Elementwise maximum/minimum of two tensors (broadcasting); ties send half the gradient
/// to each input (torch's convention).
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

// Comparisons (eq, ne, lt, le, gt, ge and their operators) live in ops/comparison.hpp,
// included above.

/// Sums `grad` over broadcast dimensions so that it gets `shape` (the inverse of
/// broadcasting): the helper every broadcasting op's backward uses. Differentiable.
Tensor sum_to(const Tensor& grad, const Shape& shape);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

}  // namespace xgrad
