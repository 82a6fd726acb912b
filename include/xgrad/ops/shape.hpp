// Shape ops. reshape/view (of a contiguous tensor), transpose, permute, squeeze, unsqueeze,
// slice and expand return views sharing the input's storage, as in torch; concat and stack
// copy. All are differentiable to any order: each one's gradient is another shape op on the
// gradient (reshape back, the inverse permutation, the slices of concat, sum_to for expand,
// the slice written into zeros for slice — itself an op whose gradient is the slice again), and
// in forward mode each applies itself to the tangent. Errors name the op and the shapes, e.g.
// "reshape: cannot reshape a tensor of shape [2,3] (6 elements) to [4,2]".
#pragma once

#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// The same elements in a new shape; one dimension may be -1 (inferred). A view when the
/// input is contiguous, else a copy.
Tensor reshape(const Tensor& a, const Shape& shape);
/// As reshape, but throws when the input is not contiguous (a view is guaranteed).
Tensor view(const Tensor& a, const Shape& shape);
/// Swaps two axes (a view).
Tensor transpose(const Tensor& a, std::int64_t axis0, std::int64_t axis1);
/// Reorders all axes: output axis i is input axis dims[i] (a view). dims must be a
/// permutation of 0..dim-1.
Tensor permute(const Tensor& a, const Shape& dims);
/// Merges axes start..end (inclusive; negatives count from the end) into one.
Tensor flatten(const Tensor& a, std::int64_t start = 0, std::int64_t end = -1);
/// Removes `axis`, which must have size 1.
Tensor squeeze(const Tensor& a, std::int64_t axis);
/// Removes every axis of size 1.
Tensor squeeze(const Tensor& a);
/// Inserts an axis of size 1 before position `axis` (-1 appends).
Tensor unsqueeze(const Tensor& a, std::int64_t axis);
/// Elements start, start+step, ... below end along `axis` (a view). start/end are clamped
/// to the axis as Python slices are; negatives count from the end; step must be positive.
Tensor slice(const Tensor& a, std::int64_t axis, std::int64_t start, std::int64_t end,
             std::int64_t step = 1);
/// Joins tensors of equal shape except along `axis`. Throws on an empty list, mixed dtypes
/// or mismatched shapes.
Tensor concat(const std::vector<Tensor>& tensors, std::int64_t axis = 0);
/// Joins tensors of identical shape along a new axis.
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t axis = 0);
/// Broadcasts `a` to `shape` without copying (stride-0 view); gradient is summed back.
Tensor expand(const Tensor& a, const Shape& shape);

}  // namespace xgrad
