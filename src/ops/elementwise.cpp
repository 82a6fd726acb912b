#include "xgrad/ops/elementwise.hpp"

#include <cmath>
#include <limits>

#include "detail/kernel.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad {

using autograd::jvp_op;
using autograd::Node;
using autograd::record_op;
using autograd::Saved;
using autograd::tangent;
using autograd::tensor_list;

namespace {

Tensor scalar_like(double v, const Tensor& t) {
  return scalar_tensor(v, t.dtype());
}

// Runs a broadcasting binary kernel: f(T{}) returns the per-element functor.
template <class R = void, class F>
Tensor binary_kernel(const Tensor& a, const Tensor& b, const char* op, F f) {
  detail::check_same_dtype(a, b, op);
  return dispatch_floating(a.dtype(), op, [&]<class T>() {
    using Out = std::conditional_t<std::is_void_v<R>, T, R>;
    return detail::map_binary<T, Out>(a, b, f(T{}), op);
  });
}

template <class F>
Tensor unary_kernel(const Tensor& a, const char* op, F f) {
  return dispatch_floating(a.dtype(), op,
                           [&]<class T>() { return detail::map_unary<T>(a, f(T{})); });
}

// ---- derivative helpers -------------------------------------------------------------------
// A backward (vjp) or jvp formula is written with xgrad ops, so that it is differentiable
// again (create_graph, forward-over-reverse). Raw kernels appear only for factors whose own
// derivative is zero: signs, masks and tie weights, which are piecewise constant.

// A clamp bound in the tensor's dtype, as torch converts it: rounded to nearest, saturating to
// ±inf beyond T's range. Comparing float32 elements with the double bound instead would give
// gradient 0 to an element clamped exactly to the rounded bound (clamp(0.2f, 0, 0.2)).
template <class T>
T clamp_bound(double v) {
  if (v > static_cast<double>(std::numeric_limits<T>::max()))
    return std::numeric_limits<T>::infinity();
  if (v < static_cast<double>(std::numeric_limits<T>::lowest()))
    return -std::numeric_limits<T>::infinity();
  return static_cast<T>(v);
}

// 1 where lo <= a <= hi (bounds in a's dtype), else 0: clamp's derivative.
Tensor clamp_mask(const Tensor& a, double lo, double hi) {
  return unary_kernel(a.detach(), "clamp_backward", [lo, hi]<class T>(T) {
    const T l = clamp_bound<T>(lo), h = clamp_bound<T>(hi);
    return [l, h](T av) { return (av >= l && av <= h) ? T(1) : T(0); };
  });
}

// d(a^e)/da = e·a^(e-1), written so that e = 0 gives 0 rather than 0·a^-1 (inf at a = 0).
Tensor pow_scalar_derivative(const Tensor& a, double e) {
  if (e == 0.0) return zeros_like(a);
  return mul(pow(a, e - 1.0), scalar_like(e, a));
}

// pow(a, b)'s partial derivatives, with torch's conventions at the edges: d/da = b·a^(b-1) is 0
// where b = 0 (the exponent is shifted to 1 there, so no 0·inf appears), and d/db = a^b·ln a is
// 0 where a = 0 and b >= 0 (ln's argument is shifted to 1 there). The shifts are constant
// masks, so the formulas stay differentiable.
Tensor pow_da(const Tensor& a, const Tensor& b) {
  Tensor b_zero = unary_kernel(b.detach(), "pow_backward", []<class T>(T) {
    return [](T e) { return e == T(0) ? T(1) : T(0); };
  });
  return mul(b, pow(a, sub(add(b, b_zero), scalar_like(1.0, b))));
}
Tensor pow_db(const Tensor& a, const Tensor& b, const Tensor& out) {
  Tensor a_zero = binary_kernel(a.detach(), b.detach(), "pow_backward", []<class T>(T) {
    return [](T x, T e) { return (x == T(0) && e >= T(0)) ? T(1) : T(0); };
  });
  return mul(out, log(add(a, a_zero)));
}

// maximum/minimum: the weight of a — 1 where a wins, 0.5 on ties, 0 where b wins.
Tensor max_min_weight(const Tensor& a, const Tensor& b, bool is_max) {
  return binary_kernel(a.detach(), b.detach(), "maximum_backward", [is_max]<class T>(T) {
    return [is_max](T x, T y) {
      if (x == y) return T(0.5);
      return (is_max ? x > y : x < y) ? T(1) : T(0);
    };
  });
}

// ---- nodes: the vjp of each op (its jvp sits beside its record_op below) ------------------

struct AddBackward final : Node {
  Shape a_shape, b_shape;
  bool subtract = false;
  std::string_view name() const override { return subtract ? "sub" : "add"; }
  tensor_list apply(tensor_list&& g) override {
    tensor_list out(2);
    if (needs_input_grad(0)) out[0] = sum_to(g[0], a_shape);
    if (needs_input_grad(1)) out[1] = sum_to(subtract ? neg(g[0]) : g[0], b_shape);
    return out;
  }
};

struct MulBackward final : Node {
  Saved a, b;
  Shape a_shape, b_shape;
  std::string_view name() const override { return "mul"; }
  tensor_list apply(tensor_list&& g) override {
    tensor_list out(2);
    if (needs_input_grad(0)) out[0] = sum_to(mul(g[0], saved(b)), a_shape);
    if (needs_input_grad(1)) out[1] = sum_to(mul(g[0], saved(a)), b_shape);
    return out;
  }
};

struct DivBackward final : Node {
  Saved a, b;
  Shape a_shape, b_shape;
  std::string_view name() const override { return "div"; }
  tensor_list apply(tensor_list&& g) override {
    tensor_list out(2);
    Tensor bv = saved(b);
    Tensor ga = div(g[0], bv);
    if (needs_input_grad(0)) out[0] = sum_to(ga, a_shape);
    // d(a/b)/db = -a/b² = -(g/b)·(a/b)
    if (needs_input_grad(1)) out[1] = sum_to(neg(mul(ga, div(saved(a), bv))), b_shape);
    return out;
  }
};

struct NegBackward final : Node {
  std::string_view name() const override { return "neg"; }
  tensor_list apply(tensor_list&& g) override { return {neg(g[0])}; }
};

struct ExpBackward final : Node {
  Saved y;
  std::string_view name() const override { return "exp"; }
  tensor_list apply(tensor_list&& g) override { return {mul(g[0], saved(y))}; }
};

struct LogBackward final : Node {
  Saved a;
  std::string_view name() const override { return "log"; }
  tensor_list apply(tensor_list&& g) override { return {div(g[0], saved(a))}; }
};

struct SqrtBackward final : Node {
  Saved y;
  std::string_view name() const override { return "sqrt"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor r = saved(y);
    return {div(g[0], mul(r, scalar_like(2.0, r)))};
  }
};

struct AbsBackward final : Node {
  Saved a;
  std::string_view name() const override { return "abs"; }
  tensor_list apply(tensor_list&& g) override { return {mul(g[0], sign(saved(a).detach()))}; }
};

struct SignBackward final : Node {
  std::string_view name() const override { return "sign"; }
  tensor_list apply(tensor_list&& g) override { return {zeros_like(g[0])}; }
};

struct ClampBackward final : Node {
  Saved a;
  double lo = 0, hi = 0;
  std::string_view name() const override { return "clamp"; }
  tensor_list apply(tensor_list&& g) override { return {mul(g[0], clamp_mask(saved(a), lo, hi))}; }
};

struct PowScalarBackward final : Node {
  Saved a;
  double exponent = 0;
  std::string_view name() const override { return "pow"; }
  tensor_list apply(tensor_list&& g) override {
    return {mul(g[0], pow_scalar_derivative(saved(a), exponent))};
  }
};

struct PowBackward final : Node {
  Saved a, b, y;
  Shape a_shape, b_shape;
  std::string_view name() const override { return "pow"; }
  tensor_list apply(tensor_list&& g) override {
    tensor_list out(2);
    Tensor av = saved(a), bv = saved(b);
    if (needs_input_grad(0)) out[0] = sum_to(mul(g[0], pow_da(av, bv)), a_shape);
    if (needs_input_grad(1)) out[1] = sum_to(mul(g[0], pow_db(av, bv, saved(y))), b_shape);
    return out;
  }
};

struct MaxMinBackward final : Node {
  Saved a, b;
  Shape a_shape, b_shape;
  bool is_max = true;
  std::string_view name() const override { return is_max ? "maximum" : "minimum"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor wa = max_min_weight(saved(a), saved(b), is_max);
    tensor_list out(2);
    if (needs_input_grad(0)) out[0] = sum_to(mul(g[0], wa), a_shape);
    if (needs_input_grad(1)) out[1] = sum_to(mul(g[0], sub(scalar_like(1.0, wa), wa)), b_shape);
    return out;
  }
};

// The shapes every broadcasting binary node keeps (its vjp sums back to them).
template <class N>
void keep_shapes(N& n, const Tensor& a, const Tensor& b) {
  n.a_shape = a.shape();
  n.b_shape = b.shape();
}

}  // namespace

// ---- binary ops ----------------------------------------------------------------------------
// Each op: the kernel, record_op (the reverse-mode node and what it saves), jvp_op (the
// forward-mode rule: the output's tangent from the inputs' tangents, zeros where none).

Tensor add(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("add", {a, b}, autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return add(x, y); }));
  Tensor out =
      binary_kernel(a, b, "add", []<class T>(T) { return [](T x, T y) { return x + y; }; });
  record_op<AddBackward>({&a, &b}, {&out}, [&](AddBackward& n) { keep_shapes(n, a, b); });
  jvp_op("add", {&a, &b}, out, [&] { return add(tangent(a), tangent(b)); });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("sub", {a, b}, autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return sub(x, y); }));
  Tensor out =
      binary_kernel(a, b, "sub", []<class T>(T) { return [](T x, T y) { return x - y; }; });
  record_op<AddBackward>({&a, &b}, {&out}, [&](AddBackward& n) {
    keep_shapes(n, a, b);
    n.subtract = true;
  });
  jvp_op("sub", {&a, &b}, out, [&] { return sub(tangent(a), tangent(b)); });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("mul", {a, b}, autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return mul(x, y); }));
  Tensor out =
      binary_kernel(a, b, "mul", []<class T>(T) { return [](T x, T y) { return x * y; }; });
  record_op<MulBackward>({&a, &b}, {&out}, [&](MulBackward& n) {
    keep_shapes(n, a, b);
    if (n.needs_input_grad(1)) n.a = n.save(a);
    if (n.needs_input_grad(0)) n.b = n.save(b);
  });
  jvp_op("mul", {&a, &b}, out, [&] { return add(mul(tangent(a), b), mul(a, tangent(b))); });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("div", {a, b}, autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return div(x, y); }));
  Tensor out =
      binary_kernel(a, b, "div", []<class T>(T) { return [](T x, T y) { return x / y; }; });
  record_op<DivBackward>({&a, &b}, {&out}, [&](DivBackward& n) {
    keep_shapes(n, a, b);
    if (n.needs_input_grad(1)) n.a = n.save(a);
    n.b = n.save(b);
  });
  // d(a/b) = (da - (a/b)·db) / b
  jvp_op("div", {&a, &b}, out, [&] { return div(sub(tangent(a), mul(out, tangent(b))), b); });
  return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("pow", {a, b}, autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return pow(x, y); }));
  Tensor out = binary_kernel(a, b, "pow",
                             []<class T>(T) { return [](T x, T y) { return std::pow(x, y); }; });
  record_op<PowBackward>({&a, &b}, {&out}, [&](PowBackward& n) {
    keep_shapes(n, a, b);
    n.a = n.save(a);
    n.b = n.save(b);
    if (n.needs_input_grad(1)) n.y = n.save(out);
  });
  jvp_op("pow", {&a, &b}, out,
         [&] { return add(mul(tangent(a), pow_da(a, b)), mul(tangent(b), pow_db(a, b, out))); });
  return out;
}

namespace {
Tensor max_min(const Tensor& a, const Tensor& b, bool is_max) {
  const char* op = is_max ? "maximum" : "minimum";
  Tensor out = binary_kernel(a, b, op, [is_max]<class T>(T) {
    return [is_max](T x, T y) {
      if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<T>::quiet_NaN();
      return is_max ? (x < y ? y : x) : (y < x ? y : x);
    };
  });
  record_op<MaxMinBackward>({&a, &b}, {&out}, [&](MaxMinBackward& n) {
    keep_shapes(n, a, b);
    n.a = n.save(a);
    n.b = n.save(b);
    n.is_max = is_max;
  });
  jvp_op(op, {&a, &b}, out, [&] {
    Tensor wa = max_min_weight(a, b, is_max);
    return add(mul(tangent(a), wa), mul(tangent(b), sub(scalar_like(1.0, wa), wa)));
  });
  return out;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("maximum", {a, b}, autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return maximum(x, y); }));
  return max_min(a, b, true);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("minimum", {a, b}, autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return minimum(x, y); }));
  return max_min(a, b, false);
}

// ---- unary ops -----------------------------------------------------------------------------

Tensor neg(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("neg", {a}, [&](const autograd::BatchedArgs& p) { const Tensor& x = p[0]; return neg(x); });
  Tensor out = unary_kernel(a, "neg", []<class T>(T) { return [](T x) { return -x; }; });
  record_op<NegBackward>({&a}, {&out});
  jvp_op("neg", {&a}, out, [&] { return neg(tangent(a)); });
  return out;
}

Tensor exp(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("exp", {a}, [&](const autograd::BatchedArgs& p) { const Tensor& x = p[0]; return exp(x); });
  Tensor out = unary_kernel(a, "exp", []<class T>(T) { return [](T x) { return std::exp(x); }; });
  record_op<ExpBackward>({&a}, {&out}, [&](ExpBackward& n) { n.y = n.save(out); });
  jvp_op("exp", {&a}, out, [&] { return mul(tangent(a), out); });
  return out;
}

Tensor log(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("log", {a}, [&](const autograd::BatchedArgs& p) { const Tensor& x = p[0]; return log(x); });
  Tensor out = unary_kernel(a, "log", []<class T>(T) { return [](T x) { return std::log(x); }; });
  record_op<LogBackward>({&a}, {&out}, [&](LogBackward& n) { n.a = n.save(a); });
  jvp_op("log", {&a}, out, [&] { return div(tangent(a), a); });
  return out;
}

Tensor sqrt(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("sqrt", {a}, [&](const autograd::BatchedArgs& p) { const Tensor& x = p[0]; return sqrt(x); });
  Tensor out = unary_kernel(a, "sqrt", []<class T>(T) { return [](T x) { return std::sqrt(x); }; });
  record_op<SqrtBackward>({&a}, {&out}, [&](SqrtBackward& n) { n.y = n.save(out); });
  jvp_op("sqrt", {&a}, out, [&] { return div(tangent(a), mul(out, scalar_like(2.0, out))); });
  return out;
}

Tensor abs(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("abs", {a}, [&](const autograd::BatchedArgs& p) { const Tensor& x = p[0]; return abs(x); });
  Tensor out = unary_kernel(a, "abs", []<class T>(T) { return [](T x) { return std::abs(x); }; });
  record_op<AbsBackward>({&a}, {&out}, [&](AbsBackward& n) { n.a = n.save(a); });
  jvp_op("abs", {&a}, out, [&] { return mul(tangent(a), sign(a.detach())); });
  return out;
}

Tensor sign(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("sign", {a}, [&](const autograd::BatchedArgs& p) { const Tensor& x = p[0]; return sign(x); });
  Tensor out = dispatch_all(a.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) {
      return a.detach().clone();
    } else {
      return detail::map_unary<T>(a.detach(),
                                  [](T x) { return static_cast<T>((T(0) < x) - (x < T(0))); });
    }
  });
  record_op<SignBackward>({&a}, {&out});
  jvp_op("sign", {&a}, out, [&] { return zeros_like(out); });
  return out;
}

Tensor clamp(const Tensor& a, double lo, double hi) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("clamp", {a}, [&](const autograd::BatchedArgs& p) { const Tensor& x = p[0]; return clamp(x, lo, hi); });
  check(!(lo > hi), "clamp: lower bound ", lo, " is greater than upper bound ", hi);
  Tensor out = unary_kernel(a, "clamp", [lo, hi]<class T>(T) {
    const T l = clamp_bound<T>(lo), h = clamp_bound<T>(hi);
    return [l, h](T x) {
      if (std::isnan(x)) return x;
      return x < l ? l : (x > h ? h : x);
    };
  });
  record_op<ClampBackward>({&a}, {&out}, [&](ClampBackward& n) {
    n.a = n.save(a);
    n.lo = lo;
    n.hi = hi;
  });
  jvp_op("clamp", {&a}, out, [&] { return mul(tangent(a), clamp_mask(a, lo, hi)); });
  return out;
}

Tensor pow(const Tensor& a, double exponent) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("pow", {a}, [&](const autograd::BatchedArgs& p) { const Tensor& x = p[0]; return pow(x, exponent); });
  Tensor out = unary_kernel(a, "pow", [exponent]<class T>(T) {
    const T e = static_cast<T>(exponent);
    const bool square = exponent == 2.0;
    return [e, square](T x) { return square ? x * x : std::pow(x, e); };
  });
  record_op<PowScalarBackward>({&a}, {&out}, [&](PowScalarBackward& n) {
    n.a = n.save(a);
    n.exponent = exponent;
  });
  jvp_op("pow", {&a}, out, [&] { return mul(tangent(a), pow_scalar_derivative(a, exponent)); });
  return out;
}

// ---- broadcasting helper -------------------------------------------------------------------

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (autograd::any_batched(grad) && grad.shape() != shape)
    return autograd::vmap_op("sum_to", {grad}, [&](const autograd::BatchedArgs& p) {
      // sum_to on the sample's dimensions: the leading ones, then those broadcast from 1.
      const std::int64_t lead = p.logical_dim(0) - static_cast<std::int64_t>(shape.size());
      check(lead >= 0, "sum_to: cannot sum a gradient of shape ", grad.shape(), " to shape ", shape);
      Shape axes;
      for (std::int64_t i = 0; i < p.logical_dim(0); ++i)
        if (i < lead || (shape[static_cast<std::size_t>(i - lead)] == 1 && grad.shape()[static_cast<std::size_t>(i)] != 1))
          axes.push_back(i + 1);
      Tensor s = axes.empty() ? p[0] : xgrad::sum(p[0], axes, true);
      Shape target = shape;
      target.insert(target.begin(), p.batch_size());
      return reshape(s, target);
    });
  if (grad.shape() == shape) return grad;
  const Shape& gs = grad.shape();
  check(gs.size() >= shape.size(), "sum_to: cannot sum a gradient of shape ", gs, " to shape ",
        shape);
  const std::size_t lead = gs.size() - shape.size();
  Shape axes;
  for (std::size_t i = 0; i < gs.size(); ++i) {
    if (i < lead) {
      axes.push_back(static_cast<std::int64_t>(i));
    } else if (shape[i - lead] == 1 && gs[i] != 1) {
      axes.push_back(static_cast<std::int64_t>(i));
    } else if (shape[i - lead] != gs[i]) {
      fail("sum_to: cannot sum a gradient of shape ", gs, " to shape ", shape);
    }
  }
  return sum(grad, axes, /*keepdim=*/true).reshape(shape);
}

// ---- operators -----------------------------------------------------------------------------

Tensor operator+(const Tensor& a, const Tensor& b) {
  return add(a, b);
}
Tensor operator-(const Tensor& a, const Tensor& b) {
  return sub(a, b);
}
Tensor operator*(const Tensor& a, const Tensor& b) {
  return mul(a, b);
}
Tensor operator/(const Tensor& a, const Tensor& b) {
  return div(a, b);
}
Tensor operator-(const Tensor& a) {
  return neg(a);
}
Tensor operator+(const Tensor& a, double b) {
  return add(a, scalar_like(b, a));
}
Tensor operator-(const Tensor& a, double b) {
  return sub(a, scalar_like(b, a));
}
Tensor operator*(const Tensor& a, double b) {
  return mul(a, scalar_like(b, a));
}
Tensor operator/(const Tensor& a, double b) {
  return div(a, scalar_like(b, a));
}
Tensor operator+(double a, const Tensor& b) {
  return add(scalar_like(a, b), b);
}
Tensor operator-(double a, const Tensor& b) {
  return sub(scalar_like(a, b), b);
}
Tensor operator*(double a, const Tensor& b) {
  return mul(scalar_like(a, b), b);
}
Tensor operator/(double a, const Tensor& b) {
  return div(scalar_like(a, b), b);
}

}  // namespace xgrad
