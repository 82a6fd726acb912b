// Masks: masked_fill, and the triangles triu / tril (causal masks for attention).
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// x with `value` where mask is true (torch.Tensor.masked_fill, out of place). The mask is a
/// bool tensor broadcastable to x's shape (the output has x's shape; x is not broadcast).
/// value = -inf is allowed (the usual attention mask). Gradient: grad where mask is false, 0
/// where it is true — masked_fill(grad, mask, 0), the op itself, so differentiable to any
/// order; forward mode: masked_fill(dx, mask, 0).
/// Shapes: x [...] any dtype, mask bool broadcastable to x -> x's shape.
/// Throws when the mask is not bool or does not broadcast to x's shape ("masked_fill: mask of
/// shape [3] does not broadcast to input of shape [2,4]").
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

/// The upper triangle of the last two dimensions (torch.triu): element (i, j) kept when
/// j − i >= diagonal, zero otherwise. diagonal 0 is the main diagonal, > 0 above it, < 0
/// below it. Gradient triu(grad, diagonal) (and tangent triu(dx, diagonal)): linear, so
/// differentiable to any order.
/// Shapes: input [..., M, N] any dtype -> the same shape. Throws for fewer than 2 dimensions
/// ("triu: expected a tensor with at least 2 dimensions, got shape [3]").
Tensor triu(const Tensor& input, std::int64_t diagonal = 0);
/// The lower triangle: element (i, j) kept when j − i <= diagonal (torch.tril); otherwise as
/// triu. tril(ones({L, S})) is a causal keep-mask; is_causal attention keeps the same entries.
Tensor tril(const Tensor& input, std::int64_t diagonal = 0);

}  // namespace xgrad
