#include "xgrad/ops/activation.hpp"

#include <cmath>
#include <limits>

#include "detail/blas.hpp"
#include "detail/kernel.hpp"
#include "detail/parallel.hpp"
#include "detail/vec_math.hpp"
#include "ops/reduction_util.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/linalg.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad {

using autograd::has_tangent;
using autograd::jvp_op;
using autograd::Node;
using autograd::record_op;
using autograd::Saved;
using autograd::tangent;
using autograd::tensor_list;

namespace {

template <class F>
Tensor unary(const Tensor& a, const char* op, F f) {
  return dispatch_floating(a.dtype(), op,
                           [&]<class T>() { return detail::map_unary<T>(a, f(T{})); });
}

template <class F>
Tensor binary(const Tensor& a, const Tensor& b, const char* op, F f) {
  detail::check_same_dtype(a, b, op);
  return dispatch_floating(a.dtype(), op,
                           [&]<class T>() { return detail::map_binary<T>(a, b, f(T{}), op); });
}

// Elements per chunk of the parallel maps below: small tensors stay on the caller.
constexpr std::int64_t kParallelGrain = 1 << 15;

// unary and binary for the large pointwise maps of a training step (gelu, the fused
// backwards): contiguous operands of one shape are mapped in chunks on the batch pool
// (detail::parallel_for), each chunk by the dispatched loop of kernel.hpp (run_unary /
// run_binary), so the result is the same as the serial map's with any number of threads. Other
// operands: unary / binary.
template <class F>
Tensor unary_parallel(const Tensor& a, const char* op, F f) {
  if (autograd::any_batched(a) || !a.is_contiguous() || a.numel() < 2 * kParallelGrain)
    return unary(a, op, f);
  return dispatch_floating(a.dtype(), op, [&]<class T>() {
    Tensor out = empty(a.shape(), dtype_of<T>);
    const T* in = a.data_ptr<T>();
    T* o = out.data_ptr<T>();
    const auto fn = f(T{});
    detail::parallel_for(a.numel(), kParallelGrain,
                         [&](std::int64_t i0, std::int64_t i1, std::int64_t) {
                           detail::run_unary(in + i0, o + i0, i1 - i0, fn);
                         });
    return out;
  });
}

template <class F>
Tensor binary_parallel(const Tensor& a, const Tensor& b, const char* op, F f) {
  if (autograd::any_batched(a, b) || a.shape() != b.shape() || a.dtype() != b.dtype() ||
      !a.is_contiguous() || !b.is_contiguous() || a.numel() < 2 * kParallelGrain)
    return binary(a, b, op, f);
  return dispatch_floating(a.dtype(), op, [&]<class T>() {
    Tensor out = empty(a.shape(), dtype_of<T>);
    const T* pa = a.data_ptr<T>();
    const T* pb = b.data_ptr<T>();
    T* o = out.data_ptr<T>();
    const auto fn = f(T{});
    detail::parallel_for(a.numel(), kParallelGrain,
                         [&](std::int64_t i0, std::int64_t i1, std::int64_t) {
                           detail::run_binary(pa + i0, pb + i0, o + i0, i1 - i0, fn);
                         });
    return out;
  });
}

// `value` where pred(x) holds, else 0. Only for factors of a derivative that are piecewise
// constant (their own derivative is zero), hence computed on detached data.
template <class P>
Tensor mask_where(const Tensor& x, double value, const char* op, P pred) {
  return unary(x.detach(), op, [value, pred]<class T>(T) {
    const T v = static_cast<T>(value);
    return [v, pred](T xv) { return pred(xv) ? v : T(0); };
  });
}

// ---- pointwise activations: y = f(x) and its fused backward g ⊙ f'(s) -----------------------
// The vjp of a pointwise activation is g ⊙ f'(s), s being the tensor f' is cheapest from: the
// input x, or the output y for tanh and sigmoid. That vjp is one fused kernel and an op of its
// own (torch's threshold_backward, tanh_backward, ...): the first-order backward costs one
// pass, as before, and the op records its own node, so backward with create_graph
// differentiates it again, to any order. A derivative descriptor D holds, for one activation:
//   name, backward_name  the forward op's and the fused backward op's names;
//   kernel<T>()          the fused backward's element function (g, s) ↦ g·f'(s);
//   second(h, s)         h ⊙ f''(s) — the fused backward's derivative in s, seeded with h —
//                        written with xgrad ops. Absent when f' is piecewise constant (f'' = 0);
// and its parameters (slope, bounds, ...) as plain fields.

template <class D>
constexpr bool has_second = requires(const D& d, const Tensor& t) {
  d.second(t, t);
};

template <class D>
Tensor fused_backward(const Tensor& g, const Tensor& s, const D& d);

// The node of a fused backward gx = g ⊙ f'(s). Linear in g: its vjp in g is the fused
// backward again; in s it is w ⊙ g ⊙ f''(s).
template <class D>
struct FusedBackwardNode final : Node {
  D d;
  Saved g, s;
  std::string_view name() const override { return d.backward_name; }
  tensor_list apply(tensor_list&& w) override {
    tensor_list out(2);
    Tensor sv = saved(s);
    if (needs_input_grad(0)) out[0] = fused_backward(w[0], sv, d);
    if (needs_input_grad(1)) {
      // zeros, not undefined, as torch: grad() then finds s used (with a zero derivative).
      if constexpr (has_second<D>) {
        out[1] = d.second(mul(w[0], saved(g)), sv);
      } else {
        out[1] = zeros_like(sv);
      }
    }
    return out;
  }
};

template <class D>
Tensor fused_backward(const Tensor& g, const Tensor& s, const D& d) {
  Tensor out =
      binary_parallel(g, s, d.backward_name, [&d]<class T>(T) { return d.template kernel<T>(); });
  record_op<FusedBackwardNode<D>>({&g, &s}, {&out}, [&](FusedBackwardNode<D>& n) {
    n.d = d;
    n.s = n.save(s);
    if constexpr (has_second<D>) {
      if (n.needs_input_grad(1)) n.g = n.save(g);
    }
  });
  // d(g ⊙ f'(s)) = dg ⊙ f'(s) + g ⊙ f''(s) ⊙ ds
  jvp_op(d.backward_name, {&g, &s}, out, [&] {
    Tensor t = fused_backward(tangent(g), s, d);
    if constexpr (has_second<D>) {
      if (has_tangent(s)) t = add(t, d.second(mul(g, tangent(s)), s));
    }
    return t;
  });
  return out;
}

// The node of the activation itself: its vjp is the fused backward.
template <class D>
struct ActivationBackward final : Node {
  D d;
  Saved s;
  std::string_view name() const override { return d.name; }
  tensor_list apply(tensor_list&& g) override { return {fused_backward(g[0], saved(s), d)}; }
};

// Records the activation a ↦ out (s: a, or out when f' is computed from the output). Its jvp is
// f'(s) ⊙ ta, the fused backward applied to the tangent.
template <class D>
Tensor activation(const Tensor& a, Tensor out, const Tensor& s, const D& d) {
  auto node =
      record_op<ActivationBackward<D>>({&a}, {&out}, [&](ActivationBackward<D>& n) { n.d = d; });
  jvp_op(d.name, {&a}, out, [&] { return fused_backward(tangent(a), s, d); });
  // Saved after the jvp: a saved output then keeps its tangent, which the fused backward's
  // own jvp needs when a backward runs inside a dual level (forward-over-reverse).
  if (node) node->s = node->save(s);
  return out;
}

// relu and leaky_relu: f' = 1 where x > 0, slope elsewhere (at 0 too, torch's convention).
// relu gives exactly 0 where x <= 0, as torch's threshold_backward, even for an infinite or
// NaN incoming gradient (0·inf would be NaN). Piecewise linear: f'' = 0.
struct LeakyReluDerivative {
  const char* name = "relu";
  const char* backward_name = "relu_backward";
  double slope = 0;
  bool is_relu = true;
  template <class T>
  auto kernel() const {
    const T s = static_cast<T>(slope);
    const bool relu = is_relu;
    return [s, relu](T gv, T xv) { return xv > T(0) ? gv : (relu ? T(0) : gv * s); };
  }
};

// tanh' = 1 - y²; ∂(g·(1 - y²))/∂y = -2·g·y.
struct TanhDerivative {
  const char* name = "tanh";
  const char* backward_name = "tanh_backward";
  template <class T>
  auto kernel() const {
    return [](T gv, T yv) { return gv * (T(1) - yv * yv); };
  }
  Tensor second(const Tensor& h, const Tensor& y) const { return mul(h, y * -2.0); }
};

// sigmoid' = y(1 - y); ∂(g·y(1 - y))/∂y = g·(1 - 2y).
struct SigmoidDerivative {
  const char* name = "sigmoid";
  const char* backward_name = "sigmoid_backward";
  template <class T>
  auto kernel() const {
    return [](T gv, T yv) { return gv * yv * (T(1) - yv); };
  }
  Tensor second(const Tensor& h, const Tensor& y) const { return mul(h, 1.0 - y * 2.0); }
};

// gelu' = Φ(x) + x·φ(x); gelu'' = 2φ + x·φ' = φ(x)·(2 - x²), φ(x) = e^(-x²/2)/√(2π).
// erf and exp through detail::verf / vexp: in float, libmvec's vector versions.
struct GeluDerivative {
  const char* name = "gelu";
  const char* backward_name = "gelu_backward";
  template <class T>
  auto kernel() const {
    return [](T gv, T xv) {
      const T cdf = T(0.5) * (T(1) + detail::verf(xv * T(M_SQRT1_2)));
      const T pdf = T(M_2_SQRTPI * M_SQRT1_2 * 0.5) * detail::vexp(T(-0.5) * xv * xv);
      return gv * (cdf + xv * pdf);
    };
  }
  Tensor second(const Tensor& h, const Tensor& x) const {
    Tensor x2 = mul(x, x);
    Tensor pdf = exp(x2 * -0.5) * (M_2_SQRTPI * M_SQRT1_2 * 0.5);
    return mul(h, mul(pdf, 2.0 - x2));
  }
};

// ---- gelu with its derivative ------------------------------------------------------------
// A training step's gelu (a large input that requires grad) computes y = x·Φ(x) and
// y' = Φ(x) + x·φ(x) in one pass: the erf the forward needs anyway and one exp, instead of
// the backward's second erf and exp. The first-order backward is then g ⊙ y' (one
// multiplication, the same bits as the fused gelu_backward: the same expressions); with
// create_graph, or tangents through the backward, the node runs the fused backward on x as
// every activation does, so every derivative of gelu is unchanged. y' costs one more
// activation-sized tensor, freed with the graph.
template <class T>
[[gnu::always_inline]] inline void gelu_with_derivative_loop(const T* __restrict x, T* __restrict y,
                                                             T* __restrict dy, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const T xv = x[i];
    const T e = detail::verf(xv * T(M_SQRT1_2));
    y[i] = xv * T(0.5) * (T(1) + e);
    const T cdf = T(0.5) * (T(1) + e);
    const T pdf = T(M_2_SQRTPI * M_SQRT1_2 * 0.5) * detail::vexp(T(-0.5) * xv * xv);
    dy[i] = cdf + xv * pdf;
  }
}
template <class T>
XGRAD_TARGET_AVX2 void gelu_with_derivative_avx2(const T* x, T* y, T* dy, std::int64_t n) {
  gelu_with_derivative_loop(x, y, dy, n);
}

// y = gelu(a) and dydx = gelu'(a) for a contiguous a, in chunks on the batch pool.
Tensor gelu_and_derivative(const Tensor& a, Tensor& dydx) {
  return dispatch_floating(a.dtype(), "gelu", [&]<class T>() {
    Tensor out = empty(a.shape(), dtype_of<T>);
    dydx = empty(a.shape(), dtype_of<T>);
    const T* in = a.data_ptr<T>();
    T* o = out.data_ptr<T>();
    T* d = dydx.data_ptr<T>();
    detail::parallel_for(a.numel(), kParallelGrain,
                         [&](std::int64_t i0, std::int64_t i1, std::int64_t) {
                           if (detail::use_avx2())
                             gelu_with_derivative_avx2(in + i0, o + i0, d + i0, i1 - i0);
                           else
                             gelu_with_derivative_loop(in + i0, o + i0, d + i0, i1 - i0);
                         });
    return out;
  });
}

// True when a node may write its result over the incoming gradient g: nothing else holds g's
// handle or storage (the fresh output of the next layer's backward, as in a training step),
// and g is a plain contiguous tensor at the start of its storage, outside any graph and vmap.
bool gradient_is_writable(const Tensor& g) {
  return g.impl().use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous() &&
         g.offset() == 0 && !g.requires_grad() && !autograd::any_batched(g);
}

// gelu's node when the forward kept y': g ⊙ y' for a first-order backward, the fused
// backward on x (recorded, differentiable again) otherwise.
struct GeluBackward final : Node {
  Saved s, dydx;
  std::string_view name() const override { return "gelu"; }
  tensor_list apply(tensor_list&& g) override {
    if (!detail::backward_needs_ops()) {
      const Tensor d = saved(dydx);
      Tensor& gy = g[0];
      // When nothing else holds the incoming gradient (the fresh output of the next layer's
      // backward, as a training step's), g ⊙ y' is written over it: the same products, one
      // [rows, width] buffer fewer to allocate and stream through memory.
      if (gradient_is_writable(gy) && gy.shape() == d.shape() && gy.dtype() == d.dtype() &&
          d.is_contiguous() && gy.numel() >= 2 * kParallelGrain) {
        dispatch_floating(gy.dtype(), "gelu_backward", [&]<class T>() {
          T* pg = gy.data_ptr<T>();
          const T* pd = d.data_ptr<T>();
          detail::parallel_for(
              gy.numel(), kParallelGrain, [&](std::int64_t i0, std::int64_t i1, std::int64_t) {
                detail::run_binary(static_cast<const T*>(pg + i0), pd + i0, pg + i0, i1 - i0,
                                   [](T gv, T dv) { return gv * dv; });
              });
        });
        return {std::move(gy)};
      }
      return {binary_parallel(gy, d, "gelu_backward",
                              []<class T>(T) { return [](T gv, T dv) { return gv * dv; }; })};
    }
    return {fused_backward(g[0], saved(s), GeluDerivative{})};
  }
};

// softplus' = sigmoid(βx), exactly 1 where βx > threshold (the forward returns x there).
// torch computes z/(z+1) with z = e^(βx): inf/inf = NaN once z overflows (a threshold above
// ~88 in float32). 1/(1 + e^(-βx)) is as cheap (no branch on the sign, which mispredicts) and
// tends to 1 and 0 at the two ends instead.
// softplus'' = β·σ(1 - σ) below the threshold, 0 above.
struct SoftplusDerivative {
  const char* name = "softplus";
  const char* backward_name = "softplus_backward";
  double beta = 1, threshold = 20;
  template <class T>
  auto kernel() const {
    const T b = static_cast<T>(beta), th = static_cast<T>(threshold);
    return [b, th](T gv, T xv) {
      const T z = xv * b;
      if (z > th) return gv;
      return gv / (T(1) + std::exp(-z));
    };
  }
  Tensor second(const Tensor& h, const Tensor& x) const {
    const double b = beta, th = threshold;
    Tensor below = mask_where(x, b, "softplus_backward", [b, th]<class T>(T xv) {
      return !(xv * static_cast<T>(b) > static_cast<T>(th));
    });
    return fused_backward(mul(h, below), sigmoid(x * b), SigmoidDerivative{});
  }
};

// elu' = alpha·e^x where x <= 0 (alpha at 0, torch's convention), 1 elsewhere; elu'' is
// alpha·e^x where x <= 0 and 0 elsewhere: the fused backward again, seeded with h masked to
// x <= 0 (alpha·e^x alone would overflow for large positive x, and inf·0 is NaN).
struct EluDerivative {
  const char* name = "elu";
  const char* backward_name = "elu_backward";
  double alpha = 1;
  template <class T>
  auto kernel() const {
    const T al = static_cast<T>(alpha);
    return [al](T gv, T xv) { return xv <= T(0) ? gv * al * std::exp(xv) : gv; };
  }
  Tensor second(const Tensor& h, const Tensor& x) const {
    Tensor nonpositive = mask_where(x, 1.0, "elu_backward", [](auto xv) { return xv <= 0; });
    return fused_backward(mul(h, nonpositive), x, *this);
  }
};

// hardtanh and relu6: f' = 1 where min_val < x < max_val, 0 elsewhere, bounds included
// (torch's hardtanh_backward; clamp instead passes the gradient at its bounds). NaN passes g.
// Piecewise linear: f'' = 0.
struct HardtanhDerivative {
  const char* name = "hardtanh";
  const char* backward_name = "hardtanh_backward";
  double min_val = -1, max_val = 1;
  template <class T>
  auto kernel() const {
    const T lo = static_cast<T>(min_val), hi = static_cast<T>(max_val);
    return [lo, hi](T gv, T xv) { return (xv <= lo || xv >= hi) ? T(0) : gv; };
  }
};

Tensor leaky(const Tensor& a, double slope, bool is_relu) {
  // x where x > 0, else slope·x; NaN propagates. A zero slope (relu) gives exactly +0 for
  // x <= 0: x·0 would give -0, and NaN for x = -inf.
  const double s = is_relu ? 0.0 : slope;
  const char* op = is_relu ? "relu" : "leaky_relu";
  Tensor out = unary(a, op, [s]<class T>(T) {
    const T st = static_cast<T>(s);
    return [st](T x) {
      if (x > T(0) || std::isnan(x)) return x;
      return st == T(0) ? T(0) : x * st;
    };
  });
  return activation(
      a, out, a,
      LeakyReluDerivative{.name = op,
                          .backward_name = is_relu ? "relu_backward" : "leaky_relu_backward",
                          .slope = slope,
                          .is_relu = is_relu});
}

// ---- softmax, log_softmax ---------------------------------------------------------------------

// log_softmax (log = true) or softmax of x along the axis.
template <class T>
Tensor softmax_kernel(const Tensor& xin, std::int64_t axis, bool log) {
  Tensor x = xin.contiguous();
  Tensor out = empty(x.shape(), dtype_of<T>);
  const detail::AxisSplit s = detail::split_axis(x.shape(), axis);
  const T* px = x.data_ptr<T>();
  T* po = out.data_ptr<T>();
  for (std::int64_t b = 0; b < s.outer; ++b) {
    for (std::int64_t i = 0; i < s.inner; ++i) {
      const T* p = px + b * s.n * s.inner + i;
      T* o = po + b * s.n * s.inner + i;
      T mx = -std::numeric_limits<T>::infinity();
      for (std::int64_t k = 0; k < s.n; ++k) mx = std::max(mx, p[k * s.inner]);
      if (std::isinf(mx)) mx = std::isnan(mx) ? mx : (mx > 0 ? mx : T(0));
      T total = 0;
      for (std::int64_t k = 0; k < s.n; ++k) {
        T e = std::exp(p[k * s.inner] - mx);
        if (!log) o[k * s.inner] = e;
        total += e;
      }
      if (log) {
        const T lse = std::log(total);
        for (std::int64_t k = 0; k < s.n; ++k) o[k * s.inner] = p[k * s.inner] - mx - lse;
      } else {
        for (std::int64_t k = 0; k < s.n; ++k) o[k * s.inner] /= total;
      }
    }
  }
  return out;
}

// softmax: dx = y ⊙ (g - Σ g⊙y); log_softmax: dx = g - e^y ⊙ Σ g. `log` is a template
// parameter so that each variant's inner loops are branch-free. Not inlined: inlined into
// softmax_backward (with its recording step) the loop counters were spilled to the stack and
// log_softmax's backward ran ~15% slower than the kernel alone.
template <class T, bool log>
[[gnu::noinline]] Tensor softmax_backward_kernel(const Tensor& gin, const Tensor& yin,
                                                 std::int64_t axis) {
  Tensor g = gin.contiguous(), y = yin.contiguous();
  Tensor out = empty(y.shape(), dtype_of<T>);
  const detail::AxisSplit s = detail::split_axis(y.shape(), axis);
  const T* pg = g.data_ptr<T>();
  const T* py = y.data_ptr<T>();
  T* po = out.data_ptr<T>();
  for (std::int64_t b = 0; b < s.outer; ++b) {
    for (std::int64_t i = 0; i < s.inner; ++i) {
      const std::int64_t base = b * s.n * s.inner + i;
      T dot = 0;
      for (std::int64_t k = 0; k < s.n; ++k) {
        const std::int64_t j = base + k * s.inner;
        if constexpr (log) {
          dot += pg[j];
        } else {
          dot += pg[j] * py[j];
        }
      }
      for (std::int64_t k = 0; k < s.n; ++k) {
        const std::int64_t j = base + k * s.inner;
        if constexpr (log) {
          po[j] = pg[j] - std::exp(py[j]) * dot;
        } else {
          po[j] = py[j] * (pg[j] - dot);
        }
      }
    }
  }
  return out;
}

Tensor softmax_backward(const Tensor& g, const Tensor& y, std::int64_t axis, bool log);

// The node of softmax_backward (torch's _softmax_backward_data). With s = Σ g⊙y and w the
// incoming gradient:
//   softmax      gx = y⊙(g - s):  ∂/∂g: softmax_backward(w, y) (the Jacobian diag(y) - yyᵀ is
//                symmetric); ∂/∂y: w⊙(g - s) - g⊙Σ(w⊙y).
//   log_softmax  gx = g - e^y⊙Σg: ∂/∂g: w - Σ(w⊙e^y); ∂/∂y: -w⊙e^y⊙Σg.
struct SoftmaxBackwardBackward final : Node {
  Saved g, y;
  std::int64_t axis = -1;
  bool log = false;
  std::string_view name() const override {
    return log ? "log_softmax_backward" : "softmax_backward";
  }
  tensor_list apply(tensor_list&& w) override {
    tensor_list out(2);
    const Tensor& wv = w[0];
    Tensor yv = saved(y);
    if (!log) {
      if (needs_input_grad(0)) out[0] = softmax_backward(wv, yv, axis, false);
      if (needs_input_grad(1)) {
        Tensor gv = saved(g);
        Tensor s = sum(mul(gv, yv), axis, true);
        out[1] = sub(mul(wv, sub(gv, s)), mul(gv, sum(mul(wv, yv), axis, true)));
      }
    } else {
      Tensor p = exp(yv);
      if (needs_input_grad(0)) out[0] = sub(wv, sum(mul(wv, p), axis, true));
      if (needs_input_grad(1)) out[1] = neg(mul(mul(wv, p), sum(saved(g), axis, true)));
    }
    return out;
  }
};

Tensor softmax_backward(const Tensor& g, const Tensor& y, std::int64_t axis, bool log) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  Tensor out = dispatch_floating(y.dtype(), op, [&]<class T>() {
    return log ? softmax_backward_kernel<T, true>(g, y, axis)
               : softmax_backward_kernel<T, false>(g, y, axis);
  });
  record_op<SoftmaxBackwardBackward>({&g, &y}, {&out}, [&](SoftmaxBackwardBackward& n) {
    n.axis = axis;
    n.log = log;
    n.y = n.save(y);
    if (n.needs_input_grad(1)) n.g = n.save(g);
  });
  jvp_op(op, {&g, &y}, out, [&] {
    // The part in dg is the op itself (it is linear in g); the part in dy as in the node.
    Tensor t = softmax_backward(tangent(g), y, axis, log);
    if (!has_tangent(y)) return t;
    Tensor ty = tangent(y);
    if (log) return sub(t, mul(mul(exp(y), ty), sum(g, axis, true)));
    Tensor s = sum(mul(g, y), axis, true);
    return add(t, sub(mul(ty, sub(g, s)), mul(y, sum(mul(g, ty), axis, true))));
  });
  return out;
}

struct SoftmaxBackward final : Node {
  Saved y;
  std::int64_t axis = -1;
  bool log = false;
  std::string_view name() const override { return log ? "log_softmax" : "softmax"; }
  tensor_list apply(tensor_list&& g) override {
    return {softmax_backward(g[0], saved(y), axis, log)};
  }
};

Tensor softmax_impl(const Tensor& a, std::int64_t axis_in, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  check(a.dim() > 0, op, ": expected a tensor with at least one dimension, got shape ", a.shape());
  const std::int64_t axis = detail::normalize_axis(axis_in, a.dim(), a.shape(), op);
  Tensor out = dispatch_floating(
      a.dtype(), op, [&]<class T>() { return softmax_kernel<T>(a.detach(), axis, log); });
  auto node = record_op<SoftmaxBackward>({&a}, {&out}, [&](SoftmaxBackward& n) {
    n.axis = axis;
    n.log = log;
  });
  // softmax: J = diag(y) - yyᵀ is symmetric, so J·ta is the backward applied to ta.
  // log_softmax: J = I - 1·softmaxᵀ, so J·ta = ta - Σ ta⊙e^y.
  jvp_op(op, {&a}, out, [&] {
    Tensor ta = tangent(a);
    if (!log) return softmax_backward(ta, out, axis, false);
    return sub(ta, sum(mul(ta, exp(out)), axis, true));
  });
  if (node) node->y = node->save(out);  // after the jvp, to keep out's tangent (see activation)
  return out;
}

}  // namespace

Tensor relu(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("relu", {a}, [&](const autograd::BatchedArgs& p) {
      const Tensor& x = p[0];
      return relu(x);
    });
  return leaky(a, 0.0, true);
}
Tensor leaky_relu(const Tensor& a, double negative_slope) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("leaky_relu", {a}, [&](const autograd::BatchedArgs& p) {
      const Tensor& x = p[0];
      return leaky_relu(x, negative_slope);
    });
  return leaky(a, negative_slope, false);
}

Tensor tanh(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("tanh", {a}, [&](const autograd::BatchedArgs& p) {
      const Tensor& x = p[0];
      return tanh(x);
    });
  // float: libmvec's vector tanhf (detail::vtanh, within 2 ulp of std::tanh; its bits may
  // differ between the SSE2 and AVX2 variants, see docs/performance.md).
  Tensor out = unary(a, "tanh", []<class T>(T) { return [](T x) { return detail::vtanh(x); }; });
  return activation(a, out, out, TanhDerivative{});
}

Tensor sigmoid(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("sigmoid", {a}, [&](const autograd::BatchedArgs& p) {
      const Tensor& x = p[0];
      return sigmoid(x);
    });
  Tensor out = unary(a, "sigmoid", []<class T>(T) {
    return [](T x) {
      if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
      const T e = std::exp(x);
      return e / (T(1) + e);
    };
  });
  return activation(a, out, out, SigmoidDerivative{});
}

Tensor softmax(const Tensor& a, std::int64_t axis) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("softmax", {a}, [&](const autograd::BatchedArgs& p) {
      if (p.logical_dim(0) == 0) return squeeze(softmax(unsqueeze(p[0], 1), 1), 1);
      return softmax(p[0], autograd::physical_dim(p, 0, axis, "softmax"));
    });
  return softmax_impl(a, axis, false);
}
Tensor log_softmax(const Tensor& a, std::int64_t axis) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("log_softmax", {a}, [&](const autograd::BatchedArgs& p) {
      if (p.logical_dim(0) == 0) return squeeze(log_softmax(unsqueeze(p[0], 1), 1), 1);
      return log_softmax(p[0], autograd::physical_dim(p, 0, axis, "log_softmax"));
    });
  return softmax_impl(a, axis, true);
}

Tensor gelu(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("gelu", {a}, [&](const autograd::BatchedArgs& p) {
      const Tensor& x = p[0];
      return gelu(x);
    });
  if (autograd::any_requires_grad({&a}) && a.is_contiguous() && a.numel() >= 2 * kParallelGrain) {
    // Training: gelu' from the same erf, in the same pass, for the first-order backward.
    Tensor dydx;
    Tensor out = gelu_and_derivative(a, dydx);
    auto node = record_op<GeluBackward>({&a}, {&out}, [](GeluBackward&) {});
    jvp_op("gelu", {&a}, out, [&] { return fused_backward(tangent(a), a, GeluDerivative{}); });
    if (node) {  // saved after the jvp, as activation() does
      node->s = node->save(a);
      node->dydx = node->save(dydx);
    }
    return out;
  }
  Tensor out = unary_parallel(a, "gelu", []<class T>(T) {
    return [](T x) { return x * T(0.5) * (T(1) + detail::verf(x * T(M_SQRT1_2))); };
  });
  return activation(a, out, a, GeluDerivative{});
}

namespace {

// linear_gelu's node: with y' = gelu'(h) from the forward, dz = g ⊙ y' (written over g when
// nothing else holds it; the bias gradient, its column sums, gathered in the same pass), then
// linear's products dx = dz·w and dw = dzᵀ·x. With create_graph the same vjp with ops, h
// recomputed from x, w, b (gelu's fused backward on it, as gelu's node does).
struct LinearGeluBackward final : Node {
  Saved x, w, b, dydx;
  std::string_view name() const override { return "linear_gelu"; }
  tensor_list apply(tensor_list&& g) override {
    const Tensor xv = saved(x), wv = saved(w);
    const std::int64_t in = wv.size(1), o = wv.size(0), n = xv.numel() / in;
    tensor_list out(3);
    Tensor x2 = reshape(xv, {n, in});
    if (detail::backward_needs_ops()) {
      const Tensor bv = saved(b);
      const Tensor dz = fused_backward(reshape(g[0], {n, o}), linear(x2, wv, bv), GeluDerivative{});
      if (needs_input_grad(0)) out[0] = reshape(matmul(dz, wv), xv.shape());
      if (needs_input_grad(1)) out[1] = matmul(dz.t(), x2);
      if (needs_input_grad(2)) out[2] = sum(dz, 0);
      return out;
    }
    const Tensor d = saved(dydx);
    Tensor& gy = g[0];
    const bool overwrite = gradient_is_writable(gy) && gy.dtype() == d.dtype();
    Tensor dz = overwrite ? reshape(gy, {n, o}) : empty({n, o}, d.dtype());
    const Tensor gc = overwrite ? dz : reshape(gy, {n, o}).contiguous();
    const bool want_db = needs_input_grad(2);
    dispatch_floating(d.dtype(), "linear_gelu_backward", [&]<class T>() {
      const T* pg = gc.data_ptr<T>();
      const T* pd = d.data_ptr<T>();
      T* pz = dz.data_ptr<T>();
      const std::int64_t chunks = detail::parallel_chunks(n, kRowGrain);
      std::vector<double> part(want_db ? static_cast<std::size_t>(chunks * o) : 0, 0.0);
      detail::parallel_for(n, kRowGrain, [&](std::int64_t r0, std::int64_t r1, std::int64_t c) {
        detail::run_binary(pg + r0 * o, pd + r0 * o, pz + r0 * o, (r1 - r0) * o,
                           [](T gv, T dv) { return gv * dv; });
        if (!want_db) return;
        double* acc = part.data() + c * o;
        for (std::int64_t r = r0; r < r1; ++r)
          for (std::int64_t j = 0; j < o; ++j) acc[j] += pz[r * o + j];
      });
      if (want_db) {
        Tensor db = empty({o}, dtype_of<T>);
        T* pb = db.data_ptr<T>();
        for (std::int64_t j = 0; j < o; ++j) {
          double s = 0;
          for (std::int64_t c = 0; c < chunks; ++c) s += part[static_cast<std::size_t>(c * o + j)];
          pb[j] = static_cast<T>(s);
        }
        out[2] = db;
      }
    });
    if (needs_input_grad(0)) out[0] = reshape(matmul(dz, wv), xv.shape());
    if (needs_input_grad(1)) out[1] = matmul(dz.t(), x2);
    return out;
  }
  static constexpr std::int64_t kRowGrain = 64;
};

}  // namespace

Tensor linear_gelu(const Tensor& x, const Tensor& w, const Tensor& b) {
  const bool fused =
      !autograd::any_batched(x, w, b) && !has_tangent(x) && !has_tangent(w) &&
      (!b.defined() || !has_tangent(b)) && autograd::any_requires_grad({&x, &w, &b}) &&
      x.dim() >= 1 && w.dim() == 2 && x.shape().back() == w.size(1) && x.is_contiguous() &&
      w.is_contiguous() && is_floating(x.dtype()) && w.dtype() == x.dtype() &&
      (!b.defined() || (b.dtype() == x.dtype() && b.dim() == 1 && b.size(0) == w.size(0))) &&
      x.numel() / std::max<std::int64_t>(w.size(1), 1) * w.size(0) >= 2 * kParallelGrain;
  if (!fused) return gelu(linear(x, w, b));  // the composition: its checks, vmap and jvp
  const std::int64_t in = w.size(1), o = w.size(0), n = x.numel() / in;
  Shape shape = x.shape();
  shape.back() = o;
  Tensor out = empty(shape, x.dtype());
  Tensor dydx = empty({n, o}, x.dtype());
  {
    no_grad guard;
    dispatch_floating(x.dtype(), "linear_gelu", [&]<class T>() {
      const Tensor bc = b.defined() ? b.detach().contiguous() : Tensor();
      const T* px = x.data_ptr<T>();
      const T* pw = w.data_ptr<T>();
      const T* pb = bc.defined() ? bc.data_ptr<T>() : nullptr;
      T* py = out.data_ptr<T>();
      T* pd = dydx.data_ptr<T>();
      // Blocks of rows whose h = x·wᵀ + b (~256 KiB) stays in the cache for gelu: h never
      // goes to memory. A block of rows of a GEMM gives the bits of the whole product.
      const std::int64_t rows = std::max<std::int64_t>(
          16, (std::int64_t(256) << 10) / static_cast<std::int64_t>(sizeof(T) * o) / 16 * 16);
      detail::parallel_for(n, rows, [&](std::int64_t r0, std::int64_t r1, std::int64_t) {
        const std::int64_t m = r1 - r0;
        thread_local std::vector<T> h;  // per thread, kept: no allocation in a training step
        h.resize(static_cast<std::size_t>(m * o));
        T beta = T(0);
        if (pb != nullptr) {
          for (std::int64_t i = 0; i < m; ++i) std::copy_n(pb, o, h.data() + i * o);
          beta = T(1);
        }
        detail::gemm_call<T>(false, true, m, o, in, px + r0 * in, in, pw, in, beta, h.data(), o);
        if constexpr (std::is_same_v<T, float>) {
          if (detail::use_avx2()) {
            gelu_with_derivative_avx2(h.data(), py + r0 * o, pd + r0 * o, m * o);
            return;
          }
        }
        gelu_with_derivative_loop(h.data(), py + r0 * o, pd + r0 * o, m * o);
      });
    });
  }
  record_op<LinearGeluBackward>({&x, &w, &b}, {&out}, [&](LinearGeluBackward& node) {
    node.x = node.save(x);
    node.w = node.save(w);
    node.b = node.save(b);
    node.dydx = node.save(dydx);
  });
  return out;
}

Tensor softplus(const Tensor& a, double beta, double threshold) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("softplus", {a}, [&](const autograd::BatchedArgs& p) {
      const Tensor& x = p[0];
      return softplus(x, beta, threshold);
    });
  check(beta != 0.0, "softplus: beta must be non-zero");
  Tensor out = unary(a, "softplus", [beta, threshold]<class T>(T) {
    const T b = static_cast<T>(beta), th = static_cast<T>(threshold);
    return [b, th](T x) { return (x * b) > th ? x : std::log1p(std::exp(x * b)) / b; };
  });
  return activation(a, out, a, SoftplusDerivative{.beta = beta, .threshold = threshold});
}

Tensor elu(const Tensor& a, double alpha) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("elu", {a}, [&](const autograd::BatchedArgs& p) {
      const Tensor& x = p[0];
      return elu(x, alpha);
    });
  Tensor out = unary(a, "elu", [alpha]<class T>(T) {
    const T al = static_cast<T>(alpha);
    return [al](T x) { return x <= T(0) ? al * std::expm1(x) : x; };
  });
  return activation(a, out, a, EluDerivative{.alpha = alpha});
}

namespace {
Tensor hardtanh_impl(const Tensor& a, double min_val, double max_val, const char* op) {
  check(!(min_val > max_val), op, ": min_val ", min_val, " is greater than max_val ", max_val);
  Tensor out = unary(a, op, [min_val, max_val]<class T>(T) {
    const T lo = static_cast<T>(min_val), hi = static_cast<T>(max_val);
    return [lo, hi](T x) { return x < lo ? lo : (x > hi ? hi : x); };  // NaN stays NaN
  });
  return activation(a, out, a,
                    HardtanhDerivative{.name = op, .min_val = min_val, .max_val = max_val});
}
}  // namespace

Tensor hardtanh(const Tensor& a, double min_val, double max_val) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("hardtanh", {a}, [&](const autograd::BatchedArgs& p) {
      const Tensor& x = p[0];
      return hardtanh(x, min_val, max_val);
    });
  return hardtanh_impl(a, min_val, max_val, "hardtanh");
}

Tensor relu6(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("relu6", {a}, [&](const autograd::BatchedArgs& p) {
      const Tensor& x = p[0];
      return relu6(x);
    });
  return hardtanh_impl(a, 0.0, 6.0, "relu6");
}

// ---- hardswish ---------------------------------------------------------------------------------

namespace {
// hardswish' = 0 for x < -3, x/3 + 1/2 on [-3, 3], 1 for x > 3: torch 1.13's hardswish_backward
// (the middle piece includes both bounds; NaN gives NaN). hardswish'' = 1/3 on the open
// (-3, 3), 0 elsewhere (torch's double backward): hardtanh_backward on (-3, 3), scaled.
struct HardswishDerivative {
  const char* name = "hardswish";
  const char* backward_name = "hardswish_backward";
  template <class T>
  auto kernel() const {
    return [](T gv, T xv) {
      if (xv < T(-3)) return T(0);
      return xv > T(3) ? gv : gv * (xv / T(3) + T(0.5));
    };
  }
  Tensor second(const Tensor& h, const Tensor& x) const {
    return fused_backward(h, x, HardtanhDerivative{.min_val = -3, .max_val = 3}) * (1.0 / 3.0);
  }
};
}  // namespace

Tensor hardswish(const Tensor& a) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("hardswish", {a}, [&](const autograd::BatchedArgs& p) {
      const Tensor& x = p[0];
      return hardswish(x);
    });
  // 0 for x <= -3 (torch's x·0 gives NaN at x = -inf, whose limit is 0), x for x >= 3.
  Tensor out = unary(a, "hardswish", []<class T>(T) {
    return [](T x) { return x <= T(-3) ? T(0) : (x >= T(3) ? x : x * (x + T(3)) / T(6)); };
  });
  return activation(a, out, a, HardswishDerivative{});
}

}  // namespace xgrad
