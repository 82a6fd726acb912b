// Dropout (Srivastava et al. 2014, "inverted" as torch.nn.functional.dropout): in training,
// each element is zeroed with probability p and the survivors are scaled by 1/(1-p), so the
// expected value is unchanged and evaluation needs no rescaling.
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Draws a dropout keep-mask: a bool tensor of `shape`, each element true (kept) with
/// probability 1-p, independently, from xgrad::default_generator() (so manual_seed reproduces
/// it): element i is kept when the i-th draw u ~ U[0,1) satisfies u >= p, in row-major order.
/// p = 0 gives all true and p = 1 all false, without drawing. Throws unless 0 <= p <= 1.
Tensor dropout_mask(const Shape& shape, double p);

/// Inverted dropout. training = false, or p = 0, returns x itself (no copy, no node).
/// Otherwise draws dropout_mask(x.shape(), p) and returns dropout_with_mask(x, mask, p):
/// x·mask/(1-p); p = 1 gives zeros (with a zero gradient). The mask is not returned — use
/// dropout_mask + dropout_with_mask to hold it fixed (tests, variational dropout).
/// Shapes: x [...] float32/float64 -> x's shape. Throws unless 0 <= p <= 1.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true);

/// Dropout with a given keep-mask: out = x·mask·scale with scale = 1/(1-p) (0 when p = 1).
/// Deterministic, so it can be gradchecked. Backward: grad·mask·scale — the op itself applied to
/// the gradient (the mask is a constant), so differentiable to any order; forward mode:
/// tangent·mask·scale.
/// Shapes: x [...] float32/float64, mask bool broadcastable to x's shape (e.g. [1, N, H] to
/// share one mask across the time steps of [T, N, H]) -> x's shape. Throws when the mask is not
/// bool, does not broadcast to x's shape, or p is outside [0, 1].
Tensor dropout_with_mask(const Tensor& x, const Tensor& mask, double p);

}  // namespace xgrad
