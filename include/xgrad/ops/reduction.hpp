// Reductions: sum, mean, max/min over all elements or along axes, argmax/argmin, logsumexp,
// amax/amin and norm.
// Axes may be negative (counting from the end); an axis out of range throws
// "sum: axis 2 is out of range for a tensor of shape [2,3]".
// Every reduction is differentiable to any order (backward with create_graph records its
// backward, written with xgrad ops) and has a forward-mode rule: the same reduction of the
// tangent; max/min/amax/amin take the tangent at the extremes, shared on ties exactly as the
// gradient is (so they are piecewise linear: second derivative 0).
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
/// convention for the all-elements max); a NaN element makes the result NaN and takes the
/// gradient (shared among the NaNs), the others get 0: max([1, nan, 3]) has gradient [0, 1, 0].
/// Throws on an empty tensor.
Tensor max(const Tensor& a);
/// Largest element along `axis`. The gradient goes to the first maximal element of each
/// slice (the one argmax returns), as torch's max(dim) does; a slice holding NaN gives NaN
/// and its first NaN takes the gradient.
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

/// Largest / smallest element over the dimensions `dim` (torch.amax / torch.amin; all of them
/// when `dim` is empty; negative dims count from the end). Unlike max(axis), ties share the
/// gradient evenly: grad·mask/count with mask = (input == result), as torch. NaN propagates;
/// a NaN result sends the gradient to the slice's NaNs (torch 1.13 gives NaN to every element
/// of the slice there: its mask input == NaN is all false and grad/0 · 0 is NaN).
/// Shapes: input [...] float32/float64 -> input's shape without `dim` (size 1 each when
/// keepdim). Throws for a dim out of range or given twice, for reducing a dimension of size 0
/// ("amax: cannot reduce over dimensions [1] of size 0 in a tensor of shape [2,0]").
Tensor amax(const Tensor& input, const Shape& dim = {}, bool keepdim = false);
Tensor amin(const Tensor& input, const Shape& dim = {}, bool keepdim = false);

/// Vector p-norm over the dimensions `dim` (all of them when empty), as torch.norm /
/// torch.linalg.vector_norm: (Σ|x|^p)^(1/p) for p >= 1, max |x| for p = inf. Sums accumulate
/// in float64; p = 2 scales by max|x| when the squares would overflow or underflow, so
/// norm([1e200, 1e200]) is 1.414e200, not inf. Gradient: sign(x)·(|x|/‖x‖)^(p−1), i.e.
/// sign(x) for p = 1 and x/‖x‖ for p = 2, and 0 at the zero vector (torch's choice); for
/// p = inf sign(x) shared evenly among the elements of largest |x|. The norm of an empty
/// slice is 0. Second derivative: for p = 2, (I − x̂x̂ᵀ)/‖x‖; at the zero vector it is taken as 0
/// for every p, like the gradient (torch's masked convention), never NaN; for 1 < p < 2 it is
/// NaN at a zero element of a nonzero slice (the true value, ∝ |x|^(p−2), is infinite). Shapes:
/// input [...] float32/float64 -> input's shape without `dim` (size 1 each when keepdim). Throws
/// for p < 1
/// ("norm: p must be >= 1 or inf, got 0.5"), a dim out of range or given twice.
Tensor norm(const Tensor& input, double p = 2.0, const Shape& dim = {}, bool keepdim = false);

}  // namespace xgrad
