#include "xgrad/ops/elementwise.hpp"

#include <cmath>
#include <limits>

#include "detail/kernel.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad {

using autograd::Node;
using autograd::SavedVariable;
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

// ---- fused backward kernels (not recorded: they run inside backward) ----------------------

// grad * sign(a), with sign(0) = 0.
Tensor abs_backward(const Tensor& g, const Tensor& a) {
  return binary_kernel(g, a, "abs_backward", []<class T>(T) {
    return [](T gv, T av) { return av > T(0) ? gv : (av < T(0) ? -gv : T(0)); };
  });
}

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

// grad where lo <= a <= hi (bounds in a's dtype), else 0.
Tensor clamp_backward(const Tensor& g, const Tensor& a, double lo, double hi) {
  return binary_kernel(g, a, "clamp_backward", [lo, hi]<class T>(T) {
    const T l = clamp_bound<T>(lo), h = clamp_bound<T>(hi);
    return [l, h](T gv, T av) { return (av >= l && av <= h) ? gv : T(0); };
  });
}

// grad * exponent * a^(exponent-1), with the exponent-0 case giving 0.
Tensor pow_scalar_backward(const Tensor& g, const Tensor& a, double e) {
  return binary_kernel(g, a, "pow_backward", [e]<class T>(T) {
    const T te = static_cast<T>(e);
    return [te](T gv, T av) { return te == T(0) ? T(0) : gv * te * std::pow(av, te - T(1)); };
  });
}

// ---- nodes ------------------------------------------------------------------------------

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
  SavedVariable a, b;
  Shape a_shape, b_shape;
  std::string_view name() const override { return "mul"; }
  tensor_list apply(tensor_list&& g) override {
    tensor_list out(2);
    if (needs_input_grad(0)) out[0] = sum_to(mul(g[0], b.unpack(name())), a_shape);
    if (needs_input_grad(1)) out[1] = sum_to(mul(g[0], a.unpack(name())), b_shape);
    return out;
  }
  void release_saved() override {
    a.reset();
    b.reset();
  }
};

struct DivBackward final : Node {
  SavedVariable a, b;
  Shape a_shape, b_shape;
  std::string_view name() const override { return "div"; }
  tensor_list apply(tensor_list&& g) override {
    tensor_list out(2);
    Tensor bv = b.unpack(name());
    Tensor ga = div(g[0], bv);
    if (needs_input_grad(0)) out[0] = sum_to(ga, a_shape);
    // d(a/b)/db = -a/b² = -(g/b)·(a/b)
    if (needs_input_grad(1)) out[1] = sum_to(neg(mul(ga, div(a.unpack(name()), bv))), b_shape);
    return out;
  }
  void release_saved() override {
    a.reset();
    b.reset();
  }
};

struct NegBackward final : Node {
  std::string_view name() const override { return "neg"; }
  tensor_list apply(tensor_list&& g) override { return {neg(g[0])}; }
};

// Unary ops whose gradient is g * f(saved): exp (saves its output), log, sqrt, abs, ...
struct ExpBackward final : Node {
  SavedVariable result;
  std::string_view name() const override { return "exp"; }
  tensor_list apply(tensor_list&& g) override { return {mul(g[0], result.unpack(name()))}; }
  void release_saved() override { result.reset(); }
};

struct LogBackward final : Node {
  SavedVariable a;
  std::string_view name() const override { return "log"; }
  tensor_list apply(tensor_list&& g) override { return {div(g[0], a.unpack(name()))}; }
  void release_saved() override { a.reset(); }
};

struct SqrtBackward final : Node {
  SavedVariable result;
  std::string_view name() const override { return "sqrt"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor r = result.unpack(name());
    return {div(g[0], mul(r, scalar_like(2.0, r)))};
  }
  void release_saved() override { result.reset(); }
};

struct AbsBackward final : Node {
  SavedVariable a;
  std::string_view name() const override { return "abs"; }
  tensor_list apply(tensor_list&& g) override { return {abs_backward(g[0], a.unpack(name()))}; }
  void release_saved() override { a.reset(); }
};

struct SignBackward final : Node {
  std::string_view name() const override { return "sign"; }
  tensor_list apply(tensor_list&& g) override { return {zeros_like(g[0])}; }
};

struct ClampBackward final : Node {
  SavedVariable a;
  double lo = 0, hi = 0;
  std::string_view name() const override { return "clamp"; }
  tensor_list apply(tensor_list&& g) override {
    return {clamp_backward(g[0], a.unpack(name()), lo, hi)};
  }
  void release_saved() override { a.reset(); }
};

struct PowScalarBackward final : Node {
  SavedVariable a;
  double exponent = 0;
  std::string_view name() const override { return "pow"; }
  tensor_list apply(tensor_list&& g) override {
    return {pow_scalar_backward(g[0], a.unpack(name()), exponent)};
  }
  void release_saved() override { a.reset(); }
};

struct PowBackward final : Node {
  SavedVariable a, b, result;
  Shape a_shape, b_shape;
  std::string_view name() const override { return "pow"; }
  tensor_list apply(tensor_list&& g) override {
    tensor_list out(2);
    Tensor av = a.unpack(name()), bv = b.unpack(name());
    if (needs_input_grad(0)) {
      // b * a^(b-1), written so that b = 0 gives 0 rather than 0 * inf.
      Tensor d = binary_kernel(av, bv, "pow_backward", []<class T>(T) {
        return [](T x, T e) { return e == T(0) ? T(0) : e * std::pow(x, e - T(1)); };
      });
      out[0] = sum_to(mul(g[0], d), a_shape);
    }
    if (needs_input_grad(1)) {
      // a^b * ln(a), taken as 0 where a = 0 and b >= 0 (torch's convention).
      Tensor r = result.unpack(name());
      Tensor lg = binary_kernel(av, bv, "pow_backward", []<class T>(T) {
        return [](T x, T e) { return (x == T(0) && e >= T(0)) ? T(0) : std::log(x); };
      });
      out[1] = sum_to(mul(g[0], mul(r, lg)), b_shape);
    }
    return out;
  }
  void release_saved() override {
    a.reset();
    b.reset();
    result.reset();
  }
};

struct MaxMinBackward final : Node {
  SavedVariable a, b;
  Shape a_shape, b_shape;
  bool is_max = true;
  std::string_view name() const override { return is_max ? "maximum" : "minimum"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor av = a.unpack(name()), bv = b.unpack(name());
    // Weight of a: 1 where a wins, 0.5 on ties, 0 where b wins.
    const bool mx = is_max;
    Tensor wa = binary_kernel(av, bv, "maximum_backward", [mx]<class T>(T) {
      return [mx](T x, T y) {
        if (x == y) return T(0.5);
        return (mx ? x > y : x < y) ? T(1) : T(0);
      };
    });
    tensor_list out(2);
    if (needs_input_grad(0)) out[0] = sum_to(mul(g[0], wa), a_shape);
    if (needs_input_grad(1)) out[1] = sum_to(mul(g[0], sub(scalar_like(1.0, wa), wa)), b_shape);
    return out;
  }
  void release_saved() override {
    a.reset();
    b.reset();
  }
};

}  // namespace

// ---- binary ops ----------------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out =
      binary_kernel(a, b, "add", []<class T>(T) { return [](T x, T y) { return x + y; }; });
  if (autograd::any_requires_grad({&a, &b})) {
    auto node = std::make_shared<AddBackward>();
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    autograd::record(node, {&a, &b}, {&out});
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out =
      binary_kernel(a, b, "sub", []<class T>(T) { return [](T x, T y) { return x - y; }; });
  if (autograd::any_requires_grad({&a, &b})) {
    auto node = std::make_shared<AddBackward>();
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    node->subtract = true;
    autograd::record(node, {&a, &b}, {&out});
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out =
      binary_kernel(a, b, "mul", []<class T>(T) { return [](T x, T y) { return x * y; }; });
  if (autograd::any_requires_grad({&a, &b})) {
    auto node = std::make_shared<MulBackward>();
    if (b.requires_grad()) node->a = SavedVariable(a);
    if (a.requires_grad()) node->b = SavedVariable(b);
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    autograd::record(node, {&a, &b}, {&out});
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out =
      binary_kernel(a, b, "div", []<class T>(T) { return [](T x, T y) { return x / y; }; });
  if (autograd::any_requires_grad({&a, &b})) {
    auto node = std::make_shared<DivBackward>();
    if (b.requires_grad()) node->a = SavedVariable(a);
    node->b = SavedVariable(b);
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    autograd::record(node, {&a, &b}, {&out});
  }
  return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(a, b, "pow",
                             []<class T>(T) { return [](T x, T y) { return std::pow(x, y); }; });
  if (autograd::any_requires_grad({&a, &b})) {
    auto node = std::make_shared<PowBackward>();
    node->a = SavedVariable(a);
    node->b = SavedVariable(b);
    if (b.requires_grad()) node->result = SavedVariable(out);
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    autograd::record(node, {&a, &b}, {&out});
  }
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
  if (autograd::any_requires_grad({&a, &b})) {
    auto node = std::make_shared<MaxMinBackward>();
    node->a = SavedVariable(a);
    node->b = SavedVariable(b);
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    node->is_max = is_max;
    autograd::record(node, {&a, &b}, {&out});
  }
  return out;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  return max_min(a, b, true);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return max_min(a, b, false);
}

// ---- unary ops -----------------------------------------------------------------------------

Tensor neg(const Tensor& a) {
  Tensor out = unary_kernel(a, "neg", []<class T>(T) { return [](T x) { return -x; }; });
  if (autograd::any_requires_grad({&a})) {
    autograd::record(std::make_shared<NegBackward>(), {&a}, {&out});
  }
  return out;
}

Tensor exp(const Tensor& a) {
  Tensor out = unary_kernel(a, "exp", []<class T>(T) { return [](T x) { return std::exp(x); }; });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<ExpBackward>();
    node->result = SavedVariable(out);
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

Tensor log(const Tensor& a) {
  Tensor out = unary_kernel(a, "log", []<class T>(T) { return [](T x) { return std::log(x); }; });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<LogBackward>();
    node->a = SavedVariable(a);
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

Tensor sqrt(const Tensor& a) {
  Tensor out = unary_kernel(a, "sqrt", []<class T>(T) { return [](T x) { return std::sqrt(x); }; });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<SqrtBackward>();
    node->result = SavedVariable(out);
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

Tensor abs(const Tensor& a) {
  Tensor out = unary_kernel(a, "abs", []<class T>(T) { return [](T x) { return std::abs(x); }; });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<AbsBackward>();
    node->a = SavedVariable(a);
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

Tensor sign(const Tensor& a) {
  Tensor out = dispatch_all(a.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) {
      return a.detach().clone();
    } else {
      return detail::map_unary<T>(a.detach(),
                                  [](T x) { return static_cast<T>((T(0) < x) - (x < T(0))); });
    }
  });
  if (autograd::any_requires_grad({&a})) {
    autograd::record(std::make_shared<SignBackward>(), {&a}, {&out});
  }
  return out;
}

Tensor clamp(const Tensor& a, double lo, double hi) {
  check(!(lo > hi), "clamp: lower bound ", lo, " is greater than upper bound ", hi);
  Tensor out = unary_kernel(a, "clamp", [lo, hi]<class T>(T) {
    const T l = clamp_bound<T>(lo), h = clamp_bound<T>(hi);
    return [l, h](T x) {
      if (std::isnan(x)) return x;
      return x < l ? l : (x > h ? h : x);
    };
  });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<ClampBackward>();
    node->a = SavedVariable(a);
    node->lo = lo;
    node->hi = hi;
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

Tensor pow(const Tensor& a, double exponent) {
  Tensor out = unary_kernel(a, "pow", [exponent]<class T>(T) {
    const T e = static_cast<T>(exponent);
    const bool square = exponent == 2.0;
    return [e, square](T x) { return square ? x * x : std::pow(x, e); };
  });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<PowScalarBackward>();
    node->a = SavedVariable(a);
    node->exponent = exponent;
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

// ---- broadcasting helper -------------------------------------------------------------------

Tensor sum_to(const Tensor& grad, const Shape& shape) {
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
