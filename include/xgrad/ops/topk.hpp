// The k largest (or smallest) entries along a dimension (torch.topk).
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// topk's result: the values (differentiable) and their int64 indices along `dim`.
struct TopK {
  Tensor values;
  Tensor indices;
};

/// The k largest (largest = true) or smallest entries of each slice along `dim`
/// (torch.topk). sorted = true orders them (descending for largest, ascending otherwise);
/// sorted = false returns them in the order of their indices. Ties are broken by the lower
/// index first. NaN counts as larger than every number (torch's order), so it comes first for
/// largest and last for smallest.
/// Gradient: the values' gradient scattered back to the chosen indices, zero elsewhere
/// (a gather whose vjp is the scatter); second derivative 0; forward mode: the tangent
/// gathered at the indices.
/// Shapes: input [...] float32/float64/int64 -> values [...] with size k along dim, same
/// dtype; indices the same shape, int64. A 0-d input is taken as one element (k 0 or 1).
/// Throws for a dim out of range or k outside [0, size of dim] ("topk: k 5 is out of range
/// for dimension 1 of size 3 in a tensor of shape [2,3]").
TopK topk(const Tensor& input, std::int64_t k, std::int64_t dim = -1, bool largest = true,
          bool sorted = true);

}  // namespace xgrad
