// Basic indexing with torch::indexing's TensorIndex lists (xgrad/indexing.hpp): integers,
// Slice(start, stop, step), None, Ellipsis and bools. Reading gives a strided *view* sharing
// the input's storage and version counter (a write through it is seen by the input), recorded
// by autograd: the gradient flows back into the indexed region of a zero tensor of the
// input's shape — an op of its own, linear in the gradient, whose gradient is the same
// indexing again, so reads are differentiable to any order; forward mode indexes the tangent.
// Writing (index_put_) assigns into that region in place.
//
// How an index list maps the input's dimensions (Python's x[...] rules):
//   an integer i   selects position i (negative counts from the end) and drops the dimension;
//                  outside [-size, size) it throws
//                  "index: index 5 is out of range for dimension 1 with size 4 (tensor of
//                  shape [3,4])";
//   Slice          keeps the dimension: start/stop clamped as Python's (never out of range),
//                  step > 0 (a zero or negative step throws, as torch);
//   None / true    inserts a dimension of size 1 (false: of size 0);
//   Ellipsis       stands for every dimension no other entry names (at most one);
//   dimensions past the list are kept whole.
// Shapes: x [d0, ..., dn-1] with k integers and slices -> k <= n, else it throws ("index: too
// many indices for a tensor of shape [3,4]: 3 dimensions indexed").
// Source: torch/csrc/api/include/torch/indexing (TensorIndex) and ATen's applySlicing.
#pragma once

#include <cstdint>
#include <vector>

#include "xgrad/indexing.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad {

/// x.index(indices): the view x[indices] (see the file comment for the rules).
/// Shapes: x [...] (any dtype) -> the indexed shape. Backward: grad written into the indexed
/// region of zeros of x's shape. Throws for an integer out of range (naming the dimension and
/// its size), a step <= 0, more than one Ellipsis, or more indexed dimensions than x has.
Tensor index(const Tensor& x, const std::vector<indexing::TensorIndex>& indices);

/// x.select(dim, i): the slice at position i of dimension dim, a view without dim (torch's
/// select; x[i] is select(x, 0, i)). Shapes: x [..., n (at dim), ...] -> x's shape without
/// dim. Backward: grad written into that slice of zeros of x's shape. Throws for a 0-d x, a dim
/// out of range, or i outside [-n, n) ("select: index 3 is out of range for dimension 0 with
/// size 3 (tensor of shape [3,4])").
Tensor select(const Tensor& x, std::int64_t dim, std::int64_t i);

/// x.index_put_(indices, value), Python's x[indices] = value: copies `value` (its leading
/// dimensions of size 1 dropped, as torch's setitem does, then broadcast to the region's shape
/// and converted to x's dtype) into the region x.index(indices), in place, and bumps the
/// version of x's storage (shared by its views). Returns x. A value overlapping x is read
/// before it is written.
/// Not recorded by autograd, like every in-place op: refused (xgrad::Error) when x or value
/// requires grad while grad mode is on — run it under xgrad::no_grad (e.g. to initialise a
/// parameter) or use the out-of-place index_put, which is differentiable.
/// Throws as index() for bad indices (the message names index_put_), and when value's shape
/// cannot be broadcast to the region's ("index_put_: cannot broadcast a value of shape [3] into
/// the indexed region of shape [2] (tensor of shape [4,2])").
Tensor& index_put_(Tensor& x, const std::vector<indexing::TensorIndex>& indices,
                   const Tensor& value);
/// As above, filling the region with a scalar (converted to x's dtype).
Tensor& index_put_(Tensor& x, const std::vector<indexing::TensorIndex>& indices, double value);

/// Out-of-place index_put_: a copy of x with `value` written into the region x[indices].
/// Shapes: x [...] (float), value broadcastable to the region's shape -> x's shape, x's dtype.
/// Backward: to x, grad with the region zeroed; to value, grad[indices] summed back to value's
/// shape (and converted to value's dtype) — both recorded ops, so differentiable to any order.
/// Forward mode: index_put of the tangents (x's tangent with value's written in, zeros for
/// a value without one). Throws as index_put_ (except for the autograd refusal).
Tensor index_put(const Tensor& x, const std::vector<indexing::TensorIndex>& indices,
                 const Tensor& value);

}  // namespace xgrad
