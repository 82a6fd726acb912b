// Reduction helpers: normalising a list of axes, the shape a reduction over them leaves, the
// mask of extreme entries, and the choice between a fused first-order backward and one
// written with ops.
// Shared by the reductions (reduction.cpp), the norms (norm.cpp), the losses (loss.cpp) and
// batch norm (normalization.cpp). Not installed.
#pragma once

#include <algorithm>
#include <cmath>

#include "detail/kernel.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::detail {

// Sorted, unique, normalised axes; throws naming `op` for an axis out of range or twice.
inline Shape normalize_axes(const Shape& axes, const Shape& shape, const char* op) {
  Shape out;
  for (auto a : axes)
    out.push_back(detail::normalize_axis(a, static_cast<std::int64_t>(shape.size()), shape, op));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end())
    fail(op, ": an axis appears twice in the reduction axes for shape ", shape);
  return out;
}

/// The shape left by reducing `axes` of `shape` (size-1 entries kept when keepdim).
inline Shape reduced_shape(const Shape& shape, const Shape& axes, bool keepdim) {
  Shape out;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    bool r = std::find(axes.begin(), axes.end(), static_cast<std::int64_t>(i)) != axes.end();
    if (!r) {
      out.push_back(shape[i]);
    } else if (keepdim) {
      out.push_back(1);
    }
  }
  return out;
}

/// Every axis of `a`, in order.
inline Shape all_axes(const Tensor& a) {
  Shape axes(static_cast<std::size_t>(a.dim()));
  for (std::size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<std::int64_t>(i);
  return axes;
}

/// 1 where x is its slice's extreme r (broadcast against x), 0 elsewhere: x == r, or both NaN
/// (a NaN extreme comes from the NaN elements, which then take its gradient, as torch's max()).
/// The entries of max/min/amax/amin that share the gradient. Shapes: x [...], r broadcastable
/// to x.
inline Tensor extreme_mask(const Tensor& x, const Tensor& r) {
  return dispatch_floating(x.dtype(), "max_backward", [&]<class T>() {
    return detail::map_binary<T>(
        x, r, [](T a, T b) { return (a == b || (std::isnan(a) && std::isnan(b))) ? T(1) : T(0); },
        "max_backward");
  });
}

/// True when a node's apply() must compute its vjp with recorded xgrad ops: its result is
/// recorded (grad mode on: a backward with create_graph) or tangents propagate through it
/// (forward-over-reverse inside a dual level). Otherwise nothing differentiates the vjp, and a
/// fused raw kernel gives the same first-order values at the cost the op always had.
inline bool backward_needs_ops() {
  return is_grad_enabled() || autograd::detail::fw_propagating();
}

}  // namespace xgrad::detail
