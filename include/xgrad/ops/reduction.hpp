// Reductions: sum, mean, max/min over all elements or along axes, and argmax/argmin.
// Axes may be negative (counting from the end); an axis out of range throws
// "sum: axis 2 is out of range for a tensor of shape [2,3]".
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Sum of all elements: a 0-d tensor. Float32 sums accumulate in float64.
Tensor sum(const Tensor& a);
/// Sum along `axis`; the axis is kept with size 1 when keepdim.
Tensor sum(const Tensor& a, std::int64_t axis, bool keepdim = false);
/// Sum along several axes (each at most once).
Tensor sum(const Tensor& a, const Shape& axes, bool keepdim = false);
/// Arithmetic mean of all elements (0-d), or along axis/axes. NaN for an empty tensor.
Tensor mean(const Tensor& a);
Tensor mean(const Tensor& a, std::int64_t axis, bool keepdim = false);
Tensor mean(const Tensor& a, const Shape& axes, bool keepdim = false);
/// Largest element (0-d). Ties share the gradient equally among the maxima (torch's
/// convention for the all-elements max). Throws on an empty tensor.
Tensor max(const Tensor& a);
/// Largest element along `axis`. The gradient goes to the first maximal element of each
/// slice (the one argmax returns), as torch's max(dim) does.
Tensor max(const Tensor& a, std::int64_t axis, bool keepdim = false);
/// Smallest element, conventions as max.
Tensor min(const Tensor& a);
Tensor min(const Tensor& a, std::int64_t axis, bool keepdim = false);
/// Index (int64) of the first largest / smallest element along `axis`. Not differentiable.
Tensor argmax(const Tensor& a, std::int64_t axis, bool keepdim = false);
Tensor argmin(const Tensor& a, std::int64_t axis, bool keepdim = false);

/// log Σ exp(a) along `axis` (torch.logsumexp), computed stably as m + log Σ exp(a − m) with m
/// the slice's maximum (taken as 0 when it is ±inf, as torch does): finite for [1000, 1000]
/// (1000 + log 2); +inf when the slice holds +inf; -inf for an all -inf or empty slice.
/// Float32 sums accumulate in float64. Gradient: grad·exp(a − result) = grad·softmax(a).
/// Shapes: a [...] float32/float64 -> a's shape without `axis` (size 1 when keepdim). Throws for
/// an axis out of range ("logsumexp: axis 2 is out of range for a tensor of shape [2,3]").
Tensor logsumexp(const Tensor& a, std::int64_t axis, bool keepdim = false);

}  // namespace xgrad
