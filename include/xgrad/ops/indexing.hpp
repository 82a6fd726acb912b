// Indexing ops: embedding lookup, gather, index_select, where and unbind, as torch defines them.
// Index tensors are int64 and never require grad; every index is checked against the size of
// the axis it selects from (negative indices are rejected, as torch's gather and embedding do),
// and the error names the op, the index, its flat position and the size, e.g.
// "embedding: index 12 at position 3 is out of range for 10 embeddings".
// Gradients flow to the float input(s) only; repeated indices sum their gradients
// (scatter-add), as in torch. Every op is differentiable to any order: the scatter-add of a
// backward is linear in the gradient, and its own gradient is the forward gather again
// (embedding, gather, index_select by the same indices); the indices and where's condition
// are constants. Forward mode applies each op to the float inputs' tangents.
#pragma once

#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Looks up rows of `weight`: out[..., :] = weight[indices[...], :] (torch.nn.functional.embedding
/// without padding_idx / max_norm).
/// Shapes: indices int64 [...] (any shape, also 0-d), weight float [V, D] -> [..., D].
/// Backward: d weight[v] = Σ over the positions p with indices[p] = v of grad[p] (rows that no
/// index selects get 0). Throws when indices is not int64, weight is not 2-D, or an index is
/// outside [0, V).
Tensor embedding(const Tensor& indices, const Tensor& weight);

/// Picks values along `axis` (torch.gather): for a 3-D x and axis 1,
/// out[i][j][k] = x[i][index[i][j][k]][k].
/// Shapes: x [...] of any dtype, index int64 with x's number of dimensions and
/// index.size(d) <= x.size(d) for every d != axis -> out of index's shape, x's dtype.
/// Backward (float x): grad scatter-added back to the picked positions of a zero tensor of
/// x's shape. Throws for a non-int64 index, a rank mismatch, an index dimension larger than
/// x's, or an index outside [0, x.size(axis)).
Tensor gather(const Tensor& x, std::int64_t axis, const Tensor& index);

/// Selects whole slices along `axis` (torch.index_select): out has x's shape except
/// out.size(axis) = index.numel(), and out's slice i along axis is x's slice index[i].
/// Shapes: x [...] (at least 1-D, any dtype), index int64 [K] (or 0-d, taken as [1]).
/// Backward (float x): grad slices added back into the selected slices (index_add), so an index
/// that appears twice gets the sum. Throws for a non-int64 or multi-dimensional index and for an
/// index outside [0, x.size(axis)).
Tensor index_select(const Tensor& x, std::int64_t axis, const Tensor& index);

/// Elementwise choice (torch.where): out = cond ? a : b, with cond, a and b broadcast together
/// as NumPy does. Shapes: cond bool, a and b of one dtype (any) -> the broadcast shape.
/// Backward: grad where cond to a (0 elsewhere), grad where !cond to b, each summed back to its
/// input's shape. Throws when cond is not bool, a and b differ in dtype, or the shapes cannot
/// be broadcast ("where: shapes [2,3] and [4] cannot be broadcast").
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

/// Splits x along `axis` into x.size(axis) views with that axis removed (torch.unbind): one
/// recorded node with one output per slice, whose backward stacks the slices' gradients (zeros
/// for slices that got none). Unrolling a recurrence over the outputs costs O(T) memory in
/// backward, where slicing each step separately would build a zero tensor of x's full shape
/// per step. Shapes: x [..., T (at axis), ...] -> T tensors of x's shape without axis.
/// Throws for a 0-d x or an axis out of range.
std::vector<Tensor> unbind(const Tensor& x, std::int64_t axis = 0);

}  // namespace xgrad
