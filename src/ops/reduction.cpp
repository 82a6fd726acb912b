#include "xgrad/ops/reduction.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "detail/kernel.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad {

using autograd::Node;
using autograd::SavedVariable;
using autograd::tensor_list;

namespace {

template <class T>
using acc_t = double;  // float32 sums accumulate in float64, as a cascade would keep them exact

// Sorted, unique, normalised axes.
Shape normalize_axes(const Shape& axes, const Shape& shape, const char* op) {
  Shape out;
  for (auto a : axes)
    out.push_back(detail::normalize_axis(a, static_cast<std::int64_t>(shape.size()), shape, op));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end())
    fail(op, ": an axis appears twice in the reduction axes for shape ", shape);
  return out;
}

Shape reduced_shape(const Shape& shape, const Shape& axes, bool keepdim) {
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

// A contiguous shape seen around one axis as [outer, n, inner], and `kept`: the shape with
// that axis reduced to size 1 (the output of a reduction along it with keepdim).
struct AxisSplit {
  std::int64_t outer = 1, n = 1, inner = 1;
  Shape kept;
};

AxisSplit split_at(const Shape& shape, std::int64_t axis) {
  AxisSplit s;
  const auto ax = static_cast<std::size_t>(axis);
  for (std::size_t i = 0; i < ax; ++i) s.outer *= shape[i];
  s.n = shape[ax];
  for (std::size_t i = ax + 1; i < shape.size(); ++i) s.inner *= shape[i];
  s.kept = shape;
  s.kept[ax] = 1;
  return s;
}

// Sum of a contiguous tensor along one axis, keeping it (size 1).
template <class T>
Tensor sum_axis_kernel(const Tensor& src, std::int64_t axis) {
  const auto [outer, n, inner, oshape] = split_at(src.shape(), axis);
  Tensor out = empty(oshape, dtype_of<T>);
  const T* in = src.data_ptr<T>();
  T* o = out.data_ptr<T>();
  std::vector<acc_t<T>> acc(static_cast<std::size_t>(inner));
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

struct SumBackward final : Node {
  Shape in_shape, keep_shape;
  double scale = 1.0;  // 1/n for mean
  bool is_mean = false;
  std::string_view name() const override { return is_mean ? "mean" : "sum"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor gk = g[0].reshape(keep_shape);
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
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<SumBackward>();
    node->in_shape = a.shape();
    node->keep_shape = reduced_shape(a.shape(), axes, true);
    node->scale = scale;
    node->is_mean = is_mean;
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

Shape all_axes(const Tensor& a) {
  Shape axes(static_cast<std::size_t>(a.dim()));
  for (std::size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<std::int64_t>(i);
  return axes;
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

struct MaxAxisBackward final : Node {
  Tensor indices;  // int64, keepdim shape: not a saved variable of any user tensor
  Shape in_shape, keep_shape;
  std::int64_t axis = 0;
  bool is_max = true;
  std::string_view name() const override { return is_max ? "max" : "min"; }
  tensor_list apply(tensor_list&& g) override {
    return {scatter_axis_backward(g[0].reshape(keep_shape), indices, in_shape, axis)};
  }
  void release_saved() override {}
};

// 1 where x is its slice's extreme r (broadcast against x), 0 elsewhere: x == r, or both NaN
// (a NaN extreme comes from the NaN elements, which then take its gradient, as torch's max()).
Tensor extreme_mask(const Tensor& x, const Tensor& r) {
  return dispatch_floating(x.dtype(), "max_backward", [&]<class T>() {
    return detail::map_binary<T>(
        x, r, [](T a, T b) { return (a == b || (std::isnan(a) && std::isnan(b))) ? T(1) : T(0); },
        "max_backward");
  });
}

// All-elements max/min: ties share the gradient equally. A NaN result sends the gradient to
// the NaN elements (shared among them) and 0 to the others, as torch: eq(x, NaN) alone would
// make every weight 0/0 = NaN.
struct MaxAllBackward final : Node {
  SavedVariable a, result;
  bool is_max = true;
  std::string_view name() const override { return is_max ? "max" : "min"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor av = a.unpack(name());
    Tensor r = result.unpack(name());
    Tensor mask = extreme_mask(av, r);
    Tensor count = sum(mask);
    return {mul(mask, div(g[0], count))};
  }
  void release_saved() override {
    a.reset();
    result.reset();
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
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<MaxAxisBackward>();
    node->indices = indices;
    node->in_shape = a.shape();
    node->keep_shape = values.shape();
    node->axis = axis;
    node->is_max = is_max;
    autograd::record(node, {&a}, {&out});
  }
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
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<MaxAllBackward>();
    node->a = SavedVariable(a);
    node->result = SavedVariable(out);
    node->is_max = is_max;
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

}  // namespace

Tensor sum(const Tensor& a) {
  return sum_impl(a, all_axes(a), false, false);
}
Tensor sum(const Tensor& a, std::int64_t axis, bool keepdim) {
  return sum_impl(a, {axis}, keepdim, false);
}
Tensor sum(const Tensor& a, const Shape& axes, bool keepdim) {
  return sum_impl(a, axes, keepdim, false);
}
Tensor mean(const Tensor& a) {
  return sum_impl(a, all_axes(a), false, true);
}
Tensor mean(const Tensor& a, std::int64_t axis, bool keepdim) {
  return sum_impl(a, {axis}, keepdim, true);
}
Tensor mean(const Tensor& a, const Shape& axes, bool keepdim) {
  return sum_impl(a, axes, keepdim, true);
}
Tensor max(const Tensor& a) {
  return extreme_all(a, true);
}
Tensor min(const Tensor& a) {
  return extreme_all(a, false);
}
Tensor max(const Tensor& a, std::int64_t axis, bool keepdim) {
  return extreme_axis(a, axis, keepdim, true, nullptr, "max");
}
Tensor min(const Tensor& a, std::int64_t axis, bool keepdim) {
  return extreme_axis(a, axis, keepdim, false, nullptr, "min");
}

Tensor argmax(const Tensor& a, std::int64_t axis, bool keepdim) {
  no_grad guard;
  Tensor idx;
  extreme_axis(a.detach(), axis, keepdim, true, &idx, "argmax");
  return idx;
}
Tensor argmin(const Tensor& a, std::int64_t axis, bool keepdim) {
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

struct LogsumexpBackward final : Node {
  SavedVariable a, result;
  Shape keep_shape;
  std::string_view name() const override { return "logsumexp"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor r = result.unpack(name()).reshape(keep_shape);
    return {mul(g[0].reshape(keep_shape), exp(sub(a.unpack(name()), r)))};
  }
  void release_saved() override {
    a.reset();
    result.reset();
  }
};

}  // namespace

Tensor logsumexp(const Tensor& a, std::int64_t axis_in, bool keepdim) {
  const std::int64_t axis = detail::normalize_axis(axis_in, a.dim(), a.shape(), "logsumexp");
  Tensor out = dispatch_floating(a.dtype(), "logsumexp", [&]<class T>() {
    return logsumexp_kernel<T>(a.detach().contiguous(), axis);
  });
  Shape keep_shape = out.shape();
  {
    no_grad guard;
    out = out.reshape(reduced_shape(a.shape(), {axis}, keepdim));
  }
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<LogsumexpBackward>();
    node->a = SavedVariable(a);
    node->result = SavedVariable(out);
    node->keep_shape = keep_shape;
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

// ---- amax / amin / norm --------------------------------------------------------------------

namespace {

// The reduced axes (sorted, unique; all of them when `dim` is empty) and the view of `a` as
// [outer, n] rows: row r holds, contiguously, the n elements that reduce into output element
// r (outputs in row-major order over the kept axes).
struct Rows {
  Shape axes;
  std::int64_t outer = 1, n = 1;
  Tensor rows;  // contiguous [outer, n], detached
};

Rows rows_of(const Tensor& a, const Shape& dim, const char* op) {
  Rows r;
  r.axes = dim.empty() ? all_axes(a) : normalize_axes(dim, a.shape(), op);
  Shape perm;
  for (std::int64_t i = 0; i < a.dim(); ++i)
    if (!std::binary_search(r.axes.begin(), r.axes.end(), i)) {
      perm.push_back(i);
      r.outer *= a.shape()[static_cast<std::size_t>(i)];
    }
  for (auto ax : r.axes) {
    perm.push_back(ax);
    r.n *= a.shape()[static_cast<std::size_t>(ax)];
  }
  no_grad guard;
  r.rows = a.detach().permute(perm).contiguous().reshape({r.outer, r.n});
  return r;
}

struct AmaxBackward final : Node {
  SavedVariable input, result;
  Shape axes, keep_shape;
  bool is_max = true;
  std::string_view name() const override { return is_max ? "amax" : "amin"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor x = input.unpack(name());
    Tensor mask = extreme_mask(x, result.unpack(name()).reshape(keep_shape));
    Tensor count = sum(mask, axes, /*keepdim=*/true);
    return {mul(mask, div(g[0].reshape(keep_shape), count))};
  }
  void release_saved() override {
    input.reset();
    result.reset();
  }
};

Tensor amax_impl(const Tensor& input, const Shape& dim, bool keepdim, bool is_max) {
  const char* op = is_max ? "amax" : "amin";
  Rows r = rows_of(input, dim, op);
  check(r.n > 0 || r.outer == 0, op, ": cannot reduce over dimensions ", dim,
        " of size 0 in a tensor of shape ", input.shape());
  Tensor out = dispatch_floating(input.dtype(), op, [&]<class T>() {
    Tensor o = empty({r.outer}, dtype_of<T>);
    const T* p = r.rows.data_ptr<T>();
    T* po = o.data_ptr<T>();
    for (std::int64_t i = 0; i < r.outer; ++i) {
      const T* row = p + i * r.n;
      T best = row[0];
      for (std::int64_t k = 1; k < r.n && !std::isnan(best); ++k)
        if (std::isnan(row[k]) || (is_max ? row[k] > best : row[k] < best)) best = row[k];
      po[i] = best;  // NaN propagates, as in torch
    }
    return o;
  });
  Shape keep_shape = reduced_shape(input.shape(), r.axes, true);
  {
    no_grad guard;
    out = out.reshape(reduced_shape(input.shape(), r.axes, keepdim));
  }
  if (autograd::any_requires_grad({&input})) {
    auto node = std::make_shared<AmaxBackward>();
    node->input = SavedVariable(input);
    node->result = SavedVariable(out);
    node->axes = r.axes;
    node->keep_shape = keep_shape;
    node->is_max = is_max;
    autograd::record(node, {&input}, {&out});
  }
  return out;
}

// sign(a): -1, 0 or 1, NaN for NaN (torch's sgn).
template <class T>
T sgn(T a) {
  return a > T(0) ? T(1) : (a < T(0) ? T(-1) : a);
}

// The p-norm of one row of n elements, accumulated in float64.
template <class T>
T norm_row(const T* x, std::int64_t n, double p) {
  double m = 0;  // max |x|, NaN when the row holds a NaN
  for (std::int64_t k = 0; k < n; ++k) {
    const double v = std::abs(static_cast<double>(x[k]));
    if (std::isnan(v)) return std::numeric_limits<T>::quiet_NaN();
    m = std::max(m, v);
  }
  if (std::isinf(p) || m == 0 || std::isinf(m)) return static_cast<T>(m);
  double s = 0;
  if (p == 1) {
    for (std::int64_t k = 0; k < n; ++k) s += std::abs(static_cast<double>(x[k]));
    return static_cast<T>(s);
  }
  if (p == 2 && m < 1e150 && m > 1e-150) {  // no overflow or underflow of the squares
    for (std::int64_t k = 0; k < n; ++k) s += static_cast<double>(x[k]) * x[k];
    return static_cast<T>(std::sqrt(s));
  }
  // m · (Σ (|x|/m)^p)^(1/p): finite for any finite row (float64 squares overflow at 1e154).
  for (std::int64_t k = 0; k < n; ++k) {
    const double v = std::abs(static_cast<double>(x[k])) / m;
    s += p == 2 ? v * v : std::pow(v, p);
  }
  return static_cast<T>(m * (p == 2 ? std::sqrt(s) : std::pow(s, 1.0 / p)));
}

struct NormBackward final : Node {
  SavedVariable input, result;
  Shape axes, keep_shape;
  double p = 2;
  std::string_view name() const override { return "norm"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor x = input.unpack(name());
    Tensor r = result.unpack(name()).reshape(keep_shape);
    Tensor gk = g[0].reshape(keep_shape);
    const double pp = p;
    if (std::isinf(pp)) {
      // The derivative of max |x|: sign(x), shared evenly among the maximal |x| (NaNs count
      // as maximal and get NaN, as torch).
      Tensor hit = dispatch_floating(x.dtype(), "norm_backward", [&]<class T>() {
        return detail::map_binary<T>(
            x, r, [](T a, T m) { return (std::abs(a) == m || std::isnan(a)) ? T(1) : T(0); },
            "norm_backward");
      });
      Tensor count = sum(hit, axes, /*keepdim=*/true);
      Tensor signs = dispatch_floating(x.dtype(), "norm_backward", [&]<class T>() {
        return detail::map_unary<T>(x, [](T a) { return sgn(a); });
      });
      return {mul(mul(hit, signs), div(gk, count))};
    }
    // d‖x‖_p/dx = sign(x)·(|x|/‖x‖)^(p−1); 0 where ‖x‖ = 0 (torch's subgradient at the zero
    // vector). p = 1: sign(x); p = 2: x/‖x‖.
    Tensor scale = dispatch_floating(x.dtype(), "norm_backward", [&]<class T>() {
      return detail::map_binary<T>(
          x, r,
          [pp](T a, T m) {
            const T s = sgn(a);
            if (pp == 1) return s;
            if (m == T(0)) return T(0);
            if (pp == 2) return a / m;
            return s * static_cast<T>(std::pow(std::abs(static_cast<double>(a)) / m, pp - 1));
          },
          "norm_backward");
    });
    return {mul(scale, gk)};
  }
  void release_saved() override {
    input.reset();
    result.reset();
  }
};

}  // namespace

Tensor amax(const Tensor& input, const Shape& dim, bool keepdim) {
  return amax_impl(input, dim, keepdim, true);
}
Tensor amin(const Tensor& input, const Shape& dim, bool keepdim) {
  return amax_impl(input, dim, keepdim, false);
}

Tensor norm(const Tensor& input, double p, const Shape& dim, bool keepdim) {
  check(p >= 1 || (std::isinf(p) && p > 0), "norm: p must be >= 1 or inf, got ", p);
  Rows r = rows_of(input, dim, "norm");
  Tensor out = dispatch_floating(input.dtype(), "norm", [&]<class T>() {
    Tensor o = empty({r.outer}, dtype_of<T>);
    const T* px = r.rows.data_ptr<T>();
    T* po = o.data_ptr<T>();
    for (std::int64_t i = 0; i < r.outer; ++i) po[i] = norm_row<T>(px + i * r.n, r.n, p);
    return o;
  });
  Shape keep_shape = reduced_shape(input.shape(), r.axes, true);
  {
    no_grad guard;
    out = out.reshape(reduced_shape(input.shape(), r.axes, keepdim));
  }
  if (autograd::any_requires_grad({&input})) {
    auto node = std::make_shared<NormBackward>();
    node->input = SavedVariable(input);
    node->result = SavedVariable(out);
    node->axes = r.axes;
    node->keep_shape = keep_shape;
    node->p = p;
    autograd::record(node, {&input}, {&out});
  }
  return out;
}

}  // namespace xgrad
