// amax / amin (ties share the gradient) and norm (p = 1, 2, ∞ and any p ≥ 1): reductions of
// rows of the input, each output element reducing one contiguous row.
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
  r.axes = dim.empty() ? detail::all_axes(a) : detail::normalize_axes(dim, a.shape(), op);
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

// Each row of `r` reduced to one value by row_value(const T* row), T being the input's dtype,
// and shaped as the reduction's output (size-1 reduced axes when keepdim). Detached: the
// callers record their own node.
template <class F>
Tensor reduce_rows(const Tensor& input, const Rows& r, bool keepdim, const char* op, F row_value) {
  Tensor out = dispatch_floating(input.dtype(), op, [&]<class T>() {
    Tensor o = empty({r.outer}, dtype_of<T>);
    const T* p = r.rows.data_ptr<T>();
    T* po = o.data_ptr<T>();
    for (std::int64_t i = 0; i < r.outer; ++i) po[i] = row_value(p + i * r.n);
    return o;
  });
  no_grad guard;
  return out.reshape(detail::reduced_shape(input.shape(), r.axes, keepdim));
}

// The weights amax/amin give each element: 1/count on the slice's extremes, 0 elsewhere
// (input's shape). Constants — computed on detached tensors: the set of extremes does not move
// under an infinitesimal change, so amax is piecewise linear and its second derivative is 0.
Tensor amax_weights(const Tensor& x, const Tensor& r_keep, const Shape& axes) {
  Tensor mask = detail::extreme_mask(x.detach(), r_keep.detach());
  return div(mask, sum(mask, axes, /*keepdim=*/true));
}

struct AmaxBackward final : Node {
  Saved input, result;
  Shape axes, keep_shape;
  bool is_max = true;
  std::string_view name() const override { return is_max ? "amax" : "amin"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor w = amax_weights(saved(input), reshape(saved(result), keep_shape), axes);
    return {mul(w, reshape(g[0], keep_shape))};
  }
};

Tensor amax_impl(const Tensor& input, const Shape& dim, bool keepdim, bool is_max) {
  const char* op = is_max ? "amax" : "amin";
  Rows r = rows_of(input, dim, op);
  check(r.n > 0 || r.outer == 0, op, ": cannot reduce over dimensions ", dim,
        " of size 0 in a tensor of shape ", input.shape());
  Tensor out = reduce_rows(input, r, keepdim, op, [&]<class T>(const T* row) {
    T best = row[0];
    for (std::int64_t k = 1; k < r.n && !std::isnan(best); ++k)
      if (std::isnan(row[k]) || (is_max ? row[k] > best : row[k] < best)) best = row[k];
    return best;  // NaN propagates, as in torch
  });
  const Shape keep_shape = detail::reduced_shape(input.shape(), r.axes, true);
  record_op<AmaxBackward>({&input}, {&out}, [&](AmaxBackward& n) {
    n.input = n.save(input);
    n.result = n.save(out);
    n.axes = r.axes;
    n.keep_shape = keep_shape;
    n.is_max = is_max;
  });
  // The tangent averaged over each slice's extremes, as the vjp shares the gradient.
  jvp_op(op, {&input}, out, [&] {
    Tensor w = amax_weights(input, reshape(out, keep_shape), r.axes);
    return reshape(sum(mul(tangent(input), w), r.axes, /*keepdim=*/true), out.shape());
  });
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

// sgn(x) elementwise, as a constant (its derivative is 0 where it exists); NaN stays NaN so
// that a NaN input gets a NaN gradient, as torch.
Tensor sign_constant(const Tensor& x) {
  return dispatch_floating(x.dtype(), "norm_backward", [&]<class T>() {
    return detail::map_unary<T>(x.detach(), [](T a) { return sgn(a); });
  });
}

// ∂‖x‖_p/∂x (input's shape) written with xgrad ops, differentiable in x (also through r, the
// norm, keep-shaped, when it carries history):
//   p = 1: sign(x);  p = 2: x/‖x‖;  p = inf: sign(x) shared among the largest |x|;
//   else sign(x)·(|x|/‖x‖)^(p−1).
// At the zero vector (‖x‖ = 0) the derivative is 0 (torch's subgradient), and so is its own
// derivative: the division is by ‖x‖ + z with z = [‖x‖ = 0] (a constant) and the result is
// multiplied by 1 − z, so no 0/0 appears and the Hessian there is taken as 0 (torch's
// masked_fill(norm == 0, 0) gives the same). Elsewhere, for 1 < p < 2 an element x_k = 0 has
// an infinite second derivative (|x|^(p−2)) and gives NaN there, as torch.
Tensor norm_derivative(const Tensor& x, const Tensor& r, double p, const Shape& axes) {
  if (p == 1) return sign_constant(x);
  if (std::isinf(p)) {
    // The elements of largest |x| (NaNs count as largest and get NaN, as torch).
    Tensor hit = dispatch_floating(x.dtype(), "norm_backward", [&]<class T>() {
      return detail::map_binary<T>(
          x.detach(), r.detach(),
          [](T a, T m) { return (std::abs(a) == m || std::isnan(a)) ? T(1) : T(0); },
          "norm_backward");
    });
    return mul(sign_constant(x), div(hit, sum(hit, axes, /*keepdim=*/true)));
  }
  Tensor z = dispatch_floating(r.dtype(), "norm_backward", [&]<class T>() {
    return detail::map_unary<T>(r.detach(), [](T m) { return m == T(0) ? T(1) : T(0); });
  });
  Tensor r_safe = add(r, z);                            // ‖x‖, or 1 where ‖x‖ = 0
  Tensor keep = sub(scalar_tensor(1.0, z.dtype()), z);  // 0 where ‖x‖ = 0
  if (p == 2) return mul(x, div(keep, r_safe));
  // Where ‖x‖ = 0 every |x| is 0: |x| + z = 1 there, so the power's derivative stays finite.
  Tensor ratio = div(add(abs(x), z), r_safe);
  return mul(mul(sign_constant(x), pow(ratio, p - 1.0)), keep);
}

// The first-order backward runs the fused raw kernel below, as fast as before; a backward that
// is recorded or carries tangents (backward_needs_ops) uses norm_derivative, the same values
// written with ops.
struct NormBackward final : Node {
  Saved input, result;
  Shape axes, keep_shape;
  double p = 2;
  std::string_view name() const override { return "norm"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor x = saved(input);
    Tensor r = reshape(saved(result), keep_shape);
    Tensor gk = reshape(g[0], keep_shape);
    if (detail::backward_needs_ops()) return {mul(norm_derivative(x, r, p, axes), gk)};
    const double pp = p;
    if (std::isinf(pp) || pp == 1) return {mul(norm_derivative(x, r, p, axes), gk)};
    // d‖x‖_p/dx = sign(x)·(|x|/‖x‖)^(p−1); 0 where ‖x‖ = 0 (torch's subgradient at the zero
    // vector). p = 2: x/‖x‖.
    Tensor scale = dispatch_floating(x.dtype(), "norm_backward", [&]<class T>() {
      return detail::map_binary<T>(
          x.detach(), r.detach(),
          [pp](T a, T m) {
            if (m == T(0)) return T(0);
            if (pp == 2) return a / m;
            return sgn(a) * static_cast<T>(std::pow(std::abs(static_cast<double>(a)) / m, pp - 1));
          },
          "norm_backward");
    });
    return {mul(scale, gk)};
  }
};

}  // namespace

Tensor amax(const Tensor& input, const Shape& dim, bool keepdim) {
  if (autograd::any_batched(input))
    return autograd::vmap_op("amax", {input}, [&](const autograd::BatchedArgs& x) {
      if (x.logical_dim(0) == 0) return amax(unsqueeze(x[0], 1), Shape{1}, false);  // scalar samples
      return amax(x[0], autograd::physical_dims(x, 0, dim, "amax"), keepdim);
    });
  return amax_impl(input, dim, keepdim, true);
}
Tensor amin(const Tensor& input, const Shape& dim, bool keepdim) {
  if (autograd::any_batched(input))
    return autograd::vmap_op("amin", {input}, [&](const autograd::BatchedArgs& x) {
      if (x.logical_dim(0) == 0) return amin(unsqueeze(x[0], 1), Shape{1}, false);  // scalar samples
      return amin(x[0], autograd::physical_dims(x, 0, dim, "amin"), keepdim);
    });
  return amax_impl(input, dim, keepdim, false);
}

Tensor norm(const Tensor& input, double p, const Shape& dim, bool keepdim) {
  if (autograd::any_batched(input))
    return autograd::vmap_op("norm", {input}, [&](const autograd::BatchedArgs& x) {
      if (x.logical_dim(0) == 0) return norm(unsqueeze(x[0], 1), p, Shape{1}, false);  // scalar samples
      return norm(x[0], p, autograd::physical_dims(x, 0, dim, "norm"), keepdim);
    });
  check(p >= 1 || (std::isinf(p) && p > 0), "norm: p must be >= 1 or inf, got ", p);
  Rows r = rows_of(input, dim, "norm");
  Tensor out = reduce_rows(input, r, keepdim, "norm",
                           [&]<class T>(const T* row) { return norm_row<T>(row, r.n, p); });
  const Shape keep_shape = detail::reduced_shape(input.shape(), r.axes, true);
  record_op<NormBackward>({&input}, {&out}, [&](NormBackward& n) {
    n.input = n.save(input);
    n.result = n.save(out);
    n.axes = r.axes;
    n.keep_shape = keep_shape;
    n.p = p;
  });
  // Σ tangent·∂‖x‖/∂x over the reduced dimensions.
  jvp_op("norm", {&input}, out, [&] {
    Tensor d = norm_derivative(input, reshape(out, keep_shape), p, r.axes);
    return reshape(sum(mul(tangent(input), d), r.axes, /*keepdim=*/true), out.shape());
  });
  return out;
}

}  // namespace xgrad
