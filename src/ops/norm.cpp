// amax / amin (ties share the gradient) and norm (p = 1, 2, ∞ and any p ≥ 1): reductions of
// rows of the input, each output element reducing one contiguous row.
#include "xgrad/ops/reduction.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "detail/kernel.hpp"
#include "ops/reduction_util.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad {

using autograd::Node;
using autograd::SavedVariable;
using autograd::tensor_list;
using detail::all_axes;
using detail::extreme_mask;
using detail::normalize_axes;
using detail::reduced_shape;

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
