#include "xgrad/ops/reduction.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "detail/kernel.hpp"
#include "ops/reduction_util.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad {

using autograd::jvp_op;
using autograd::Node;
using autograd::record_op;
using autograd::Saved;
using autograd::tangent;
using autograd::tensor_list;

using detail::all_axes;
using detail::extreme_mask;
using detail::normalize_axes;
using detail::reduced_shape;

namespace {

template <class T>
using acc_t = double;  // float32 sums accumulate in float64, as a cascade would keep them exact

// A contiguous shape split around one axis (detail::split_axis), and `kept`: the shape with
// that axis reduced to size 1 (the output of a reduction along it with keepdim).
struct KeptSplit {
  std::int64_t outer = 1, n = 1, inner = 1;
  Shape kept;
};

KeptSplit split_at(const Shape& shape, std::int64_t axis) {
  const detail::AxisSplit s = detail::split_axis(shape, axis);
  Shape kept = shape;
  kept[static_cast<std::size_t>(axis)] = 1;
  return {s.outer, s.n, s.inner, std::move(kept)};
}

// Sum of a contiguous tensor along one axis, keeping it (size 1).
template <class T>
Tensor sum_axis_kernel(const Tensor& src, std::int64_t axis) {
  const auto [outer, n, inner, oshape] = split_at(src.shape(), axis);
  Tensor out = empty(oshape, dtype_of<T>);
  const T* in = src.data_ptr<T>();
  T* o = out.data_ptr<T>();
  // a per-thread scratch row, reused from call to call (issue 14: no allocation per step)
  thread_local std::vector<acc_t<T>> acc;
  acc.resize(static_cast<std::size_t>(inner));
  for (std::int64_t b = 0; b < outer; ++b) {
    if (inner == 1) {
      acc_t<T> s = 0;
      const T* p = in + b * n;
      for (std::int64_t k = 0; k < n; ++k) s += p[k];
      o[b] = static_cast<T>(s);
      continue;
    }
    std::fill(acc.begin(), acc.end(), acc_t<T>(0));
    for (std::int64_t k = 0; k < n; ++k) {
      const T* p = in + (b * n + k) * inner;
      for (std::int64_t i = 0; i < inner; ++i) acc[static_cast<std::size_t>(i)] += p[i];
    }
    for (std::int64_t i = 0; i < inner; ++i)
      o[b * inner + i] = static_cast<T>(acc[static_cast<std::size_t>(i)]);
  }
  return out;
}

Tensor sum_kernel(const Tensor& a, const Shape& axes, bool keepdim, const char* op) {
  return dispatch_floating(a.dtype(), op, [&]<class T>() {
    // Reducing several axes one after the other would round every partial sum to T: a float32
    // input is widened to float64 first, so the whole reduction accumulates in float64.
    const bool widen = std::is_same_v<T, float> && axes.size() > 1;
    Tensor cur = widen ? a.to(Dtype::float64) : a.contiguous();
    for (auto ax = axes.rbegin(); ax != axes.rend(); ++ax)
      cur = widen ? sum_axis_kernel<double>(cur, *ax) : sum_axis_kernel<T>(cur, *ax);
    if (widen) cur = cur.to(Dtype::float32);
    if (axes.empty()) cur = cur.clone();
    return cur.reshape(reduced_shape(a.shape(), axes, keepdim));
  });
}

// vjp of sum/mean: the gradient expanded back over the reduced axes (scaled by 1/n for mean).
// Made of recorded ops (reshape, mul, expand), so it is differentiable again; it is linear in
// the gradient, so sum's second derivative is 0.
struct SumBackward final : Node {
  Shape in_shape, keep_shape;
  double scale = 1.0;  // 1/n for mean
  bool is_mean = false;
  std::string_view name() const override { return is_mean ? "mean" : "sum"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor gk = reshape(g[0], keep_shape);
    if (scale != 1.0) gk = gk * scale;
    return {expand(gk, in_shape)};
  }
};

Tensor sum_impl(const Tensor& a, const Shape& axes_in, bool keepdim, bool is_mean) {
  const char* op = is_mean ? "mean" : "sum";
  Shape axes = normalize_axes(axes_in, a.shape(), op);
  Tensor out;
  {
    no_grad guard;
    out = sum_kernel(a.detach(), axes, keepdim, op);
  }
  std::int64_t count = 1;
  for (auto ax : axes) count *= a.shape()[static_cast<std::size_t>(ax)];
  double scale = 1.0;
  if (is_mean) {
    scale = 1.0 / static_cast<double>(count);
    no_grad guard;
    out.div_(static_cast<double>(count));
  }
  record_op<SumBackward>({&a}, {&out}, [&](SumBackward& n) {
    n.in_shape = a.shape();
    n.keep_shape = reduced_shape(a.shape(), axes, true);
    n.scale = scale;
    n.is_mean = is_mean;
  });
  // Linear: the tangent reduced the same way.
  jvp_op(op, {&a}, out, [&] { return sum_impl(tangent(a), axes, keepdim, is_mean); });
  return out;
}

// ---- max / min ----------------------------------------------------------------------------

// Values and (first) indices of the extreme along one axis of a contiguous tensor.
template <class T>
void extreme_axis_kernel(const Tensor& src, std::int64_t axis, bool is_max, Tensor& values,
                         Tensor& indices) {
  const auto [outer, n, inner, oshape] = split_at(src.shape(), axis);
  values = empty(oshape, dtype_of<T>);
  indices = empty(oshape, Dtype::int64);
  const T* in = src.data_ptr<T>();
  T* v = values.data_ptr<T>();
  std::int64_t* idx = indices.data_ptr<std::int64_t>();
  for (std::int64_t b = 0; b < outer; ++b) {
    for (std::int64_t i = 0; i < inner; ++i) {
      const T* p = in + b * n * inner + i;
      T best = p[0];
      std::int64_t bi = 0;
      for (std::int64_t k = 1; k < n; ++k) {
        T x = p[k * inner];
        if (std::isnan(best)) break;  // NaN propagates, as in torch
        if (std::isnan(x) || (is_max ? x > best : x < best)) {
          best = x;
          bi = k;
        }
      }
      v[b * inner + i] = best;
      idx[b * inner + i] = bi;
    }
  }
}

// Gradient of max/min along an axis: g scattered to the chosen index of each slice.
Tensor scatter_axis_backward(const Tensor& g_keep, const Tensor& indices, const Shape& in_shape,
                             std::int64_t axis) {
  return dispatch_floating(g_keep.dtype(), "max_backward", [&]<class T>() {
    Tensor gc = g_keep.contiguous();
    Tensor out = zeros(in_shape, dtype_of<T>);
    const auto [outer, n, inner, kept] = split_at(in_shape, axis);
    const T* gp = gc.data_ptr<T>();
    const std::int64_t* ip = indices.data_ptr<std::int64_t>();
    T* o = out.data_ptr<T>();
    for (std::int64_t b = 0; b < outer; ++b)
      for (std::int64_t i = 0; i < inner; ++i)
        o[(b * n + ip[b * inner + i]) * inner + i] = gp[b * inner + i];
    return out;
  });
}

// 1 at the element each slice's extreme came from (indices, keepdim shape), 0 elsewhere:
// in_shape. A constant (the argmax does not move under an infinitesimal change of the input).
Tensor index_mask(const Tensor& indices, const Shape& in_shape, std::int64_t axis, Dtype dtype) {
  return scatter_axis_backward(ones(indices.shape(), dtype), indices, in_shape, axis);
}

// max/min along an axis: the gradient goes to the index argmax chose. The first-order
// backward scatters it with the raw kernel, as fast as before; a backward that is recorded or
// carries tangents (backward_needs_ops: create_graph, forward-over-reverse) multiplies the expanded
// gradient by the constant one-hot mask of those indices instead, which is the same linear map
// written with differentiable ops. The second derivative w.r.t. the input is 0 (piecewise linear).
struct MaxAxisBackward final : Node {
  Saved indices;  // int64, keepdim shape
  Shape in_shape, keep_shape;
  std::int64_t axis = 0;
  bool is_max = true;
  std::string_view name() const override { return is_max ? "max" : "min"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor idx = saved(indices);
    Tensor gk = reshape(g[0], keep_shape);
    if (!detail::backward_needs_ops()) return {scatter_axis_backward(gk, idx, in_shape, axis)};
    return {mul(expand(gk, in_shape), index_mask(idx, in_shape, axis, gk.dtype()))};
  }
};

// All-elements max/min: ties share the gradient equally. A NaN result sends the gradient to
// the NaN elements (shared among them) and 0 to the others, as torch: eq(x, NaN) alone would
// make every weight 0/0 = NaN. The mask and its count are constants (computed on detached
// tensors), so the vjp mask·g/count is linear in g and differentiable; second derivative 0.
struct MaxAllBackward final : Node {
  Saved a, result;
  bool is_max = true;
  std::string_view name() const override { return is_max ? "max" : "min"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor mask = extreme_mask(saved(a).detach(), saved(result).detach());
    return {mul(mask, div(g[0], sum(mask)))};
  }
};

// `op` names the caller (max, min, argmax, argmin) in the error messages.
Tensor extreme_axis(const Tensor& a, std::int64_t axis_in, bool keepdim, bool is_max,
                    Tensor* indices_out, const char* op) {
  std::int64_t axis = detail::normalize_axis(axis_in, a.dim(), a.shape(), op);
  check(a.shape()[static_cast<std::size_t>(axis)] > 0, op, ": cannot reduce an empty axis ",
        axis_in, " of shape ", a.shape());
  Tensor values, indices;
  dispatch_all(a.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) {
      fail(op, ": not defined for bool tensors");
    } else {
      no_grad guard;
      extreme_axis_kernel<T>(a.detach().contiguous(), axis, is_max, values, indices);
    }
  });
  Shape oshape = reduced_shape(a.shape(), {axis}, keepdim);
  Tensor out = values.reshape(oshape);
  if (indices_out) *indices_out = indices.reshape(oshape);
  record_op<MaxAxisBackward>({&a}, {&out}, [&](MaxAxisBackward& n) {
    n.indices = n.save(indices);
    n.in_shape = a.shape();
    n.keep_shape = values.shape();
    n.axis = axis;
    n.is_max = is_max;
  });
  // The tangent at the chosen index of each slice.
  jvp_op(op, {&a}, out, [&] {
    Tensor mask = index_mask(indices, a.shape(), axis, a.dtype());
    return sum(mul(tangent(a), mask), axis, keepdim);
  });
  return out;
}

Tensor extreme_all(const Tensor& a, bool is_max) {
  const char* op = is_max ? "max" : "min";
  check(a.numel() > 0, op, ": cannot reduce an empty tensor of shape ", a.shape());
  Tensor flat;
  {
    no_grad guard;
    flat = a.detach().reshape({a.numel()});
  }
  Tensor out = extreme_axis(flat, 0, false, is_max, nullptr, op);
  record_op<MaxAllBackward>({&a}, {&out}, [&](MaxAllBackward& n) {
    n.a = n.save(a);
    n.result = n.save(out);
    n.is_max = is_max;
  });
  // The tangent averaged over the maxima, as the vjp shares the gradient.
  jvp_op(op, {&a}, out, [&] {
    Tensor mask = extreme_mask(a.detach(), out.detach());
    return div(sum(mul(tangent(a), mask)), sum(mask));
  });
  return out;
}

}  // namespace

Tensor sum(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("sum", {a}, [](const autograd::BatchedArgs& p) {
      return p.logical_dim(0) == 0 ? p[0] : sum(p[0], autograd::physical_dims(p, 0, {}, "sum"));
    });
  return sum_impl(a, all_axes(a), false, false);
}
Tensor sum(const Tensor& a, std::int64_t axis, bool keepdim) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("sum", {a}, [&](const autograd::BatchedArgs& p) {
      if (p.logical_dim(0) == 0) return sum(unsqueeze(p[0], 1), 1, false);  // scalar samples
      return sum(p[0], autograd::physical_dim(p, 0, axis, "sum"), keepdim);
    });
  return sum_impl(a, {axis}, keepdim, false);
}
Tensor sum(const Tensor& a, const Shape& axes, bool keepdim) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("sum", {a}, [&](const autograd::BatchedArgs& p) {
      const Shape d = autograd::physical_dims(p, 0, axes, "sum");
      return d.empty() ? p[0] : sum(p[0], d, keepdim);
    });
  return sum_impl(a, axes, keepdim, false);
}
Tensor mean(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("mean", {a}, [](const autograd::BatchedArgs& p) {
      return p.logical_dim(0) == 0 ? p[0] : mean(p[0], autograd::physical_dims(p, 0, {}, "mean"));
    });
  return sum_impl(a, all_axes(a), false, true);
}
Tensor mean(const Tensor& a, std::int64_t axis, bool keepdim) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("mean", {a}, [&](const autograd::BatchedArgs& p) {
      if (p.logical_dim(0) == 0) return mean(unsqueeze(p[0], 1), 1, false);  // scalar samples
      return mean(p[0], autograd::physical_dim(p, 0, axis, "mean"), keepdim);
    });
  return sum_impl(a, {axis}, keepdim, true);
}
Tensor mean(const Tensor& a, const Shape& axes, bool keepdim) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("mean", {a}, [&](const autograd::BatchedArgs& p) {
      const Shape d = autograd::physical_dims(p, 0, axes, "mean");
      return d.empty() ? p[0] : mean(p[0], d, keepdim);
    });
  return sum_impl(a, axes, keepdim, true);
}
Tensor max(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("max", {a}, [](const autograd::BatchedArgs& p) {
      return p.logical_dim(0) == 0 ? p[0] : amax(p[0], autograd::physical_dims(p, 0, {}, "max"));
    });
  return extreme_all(a, true);
}
Tensor min(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("min", {a}, [](const autograd::BatchedArgs& p) {
      return p.logical_dim(0) == 0 ? p[0] : amin(p[0], autograd::physical_dims(p, 0, {}, "min"));
    });
  return extreme_all(a, false);
}
Tensor max(const Tensor& a, std::int64_t axis, bool keepdim) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("max", {a}, [&](const autograd::BatchedArgs& p) {
      if (p.logical_dim(0) == 0) return max(unsqueeze(p[0], 1), 1, false);  // scalar samples
      return max(p[0], autograd::physical_dim(p, 0, axis, "max"), keepdim);
    });
  return extreme_axis(a, axis, keepdim, true, nullptr, "max");
}
Tensor min(const Tensor& a, std::int64_t axis, bool keepdim) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("min", {a}, [&](const autograd::BatchedArgs& p) {
      if (p.logical_dim(0) == 0) return min(unsqueeze(p[0], 1), 1, false);  // scalar samples
      return min(p[0], autograd::physical_dim(p, 0, axis, "min"), keepdim);
    });
  return extreme_axis(a, axis, keepdim, false, nullptr, "min");
}

Tensor argmax(const Tensor& a, std::int64_t axis, bool keepdim) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("argmax", {a}, [&](const autograd::BatchedArgs& p) {
      if (p.logical_dim(0) == 0) return argmax(unsqueeze(p[0], 1), 1, false);  // scalar samples
      return argmax(p[0], autograd::physical_dim(p, 0, axis, "argmax"), keepdim);
    });
  no_grad guard;
  Tensor idx;
  extreme_axis(a.detach(), axis, keepdim, true, &idx, "argmax");
  return idx;
}
Tensor argmin(const Tensor& a, std::int64_t axis, bool keepdim) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("argmin", {a}, [&](const autograd::BatchedArgs& p) {
      if (p.logical_dim(0) == 0) return argmin(unsqueeze(p[0], 1), 1, false);  // scalar samples
      return argmin(p[0], autograd::physical_dim(p, 0, axis, "argmin"), keepdim);
    });
  no_grad guard;
  Tensor idx;
  extreme_axis(a.detach(), axis, keepdim, false, &idx, "argmin");
  return idx;
}

// ---- logsumexp -----------------------------------------------------------------------------

namespace {

// log Σ exp along one axis of a contiguous tensor, keeping the axis (size 1).
template <class T>
Tensor logsumexp_kernel(const Tensor& src, std::int64_t axis) {
  const auto [outer, n, inner, oshape] = split_at(src.shape(), axis);
  Tensor out = empty(oshape, dtype_of<T>);
  const T* in = src.data_ptr<T>();
  T* o = out.data_ptr<T>();
  for (std::int64_t b = 0; b < outer; ++b) {
    for (std::int64_t i = 0; i < inner; ++i) {
      const T* p = in + b * n * inner + i;
      T m = -std::numeric_limits<T>::infinity();
      bool nan = false;
      for (std::int64_t k = 0; k < n; ++k) {
        const T x = p[k * inner];
        if (std::isnan(x)) nan = true;
        if (x > m) m = x;
      }
      if (std::isinf(m)) m = T(0);
      acc_t<T> total = 0;
      for (std::int64_t k = 0; k < n; ++k) total += std::exp(acc_t<T>(p[k * inner]) - m);
      o[b * inner + i] =
          nan ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(std::log(total) + acc_t<T>(m));
    }
  }
  return out;
}

// vjp grad·exp(a − result) = grad·softmax(a), with recorded ops: the saved result gets its
// history back under create_graph, so the second derivative (diag(p) − ppᵀ per slice) follows.
struct LogsumexpBackward final : Node {
  Saved a, result;
  Shape keep_shape;
  std::string_view name() const override { return "logsumexp"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor r = reshape(saved(result), keep_shape);
    return {mul(reshape(g[0], keep_shape), exp(sub(saved(a), r)))};
  }
};

}  // namespace

Tensor logsumexp(const Tensor& a, std::int64_t axis_in, bool keepdim) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("logsumexp", {a}, [&](const autograd::BatchedArgs& p) {
      if (p.logical_dim(0) == 0) return logsumexp(unsqueeze(p[0], 1), 1, false);  // scalar samples
      return logsumexp(p[0], autograd::physical_dim(p, 0, axis_in, "logsumexp"), keepdim);
    });
  const std::int64_t axis = detail::normalize_axis(axis_in, a.dim(), a.shape(), "logsumexp");
  Tensor out = dispatch_floating(a.dtype(), "logsumexp", [&]<class T>() {
    return logsumexp_kernel<T>(a.detach().contiguous(), axis);
  });
  Shape keep_shape = out.shape();
  {
    no_grad guard;
    out = out.reshape(reduced_shape(a.shape(), {axis}, keepdim));
  }
  record_op<LogsumexpBackward>({&a}, {&out}, [&](LogsumexpBackward& n) {
    n.a = n.save(a);
    n.result = n.save(out);
    n.keep_shape = keep_shape;
  });
  // Σ tangent·softmax(a) along the axis.
  jvp_op("logsumexp", {&a}, out, [&] {
    Tensor p = exp(sub(a, reshape(out, keep_shape)));
    return sum(mul(tangent(a), p), axis, keepdim);
  });
  return out;
}

}  // namespace xgrad
