#include "xgrad/ops/activation.hpp"

#include <cmath>
#include <limits>

#include "detail/kernel.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/elementwise.hpp"

namespace xgrad {

using autograd::Node;
using autograd::SavedVariable;
using autograd::tensor_list;

namespace {

template <class F>
Tensor unary(const Tensor& a, const char* op, F f) {
  return dispatch_floating(a.dtype(), op,
                           [&]<class T>() { return detail::map_unary<T>(a, f(T{})); });
}

template <class F>
Tensor binary(const Tensor& a, const Tensor& b, const char* op, F f) {
  return dispatch_floating(a.dtype(), op,
                           [&]<class T>() { return detail::map_binary<T>(a, b, f(T{}), op); });
}

// ---- fused backward kernels (torch's threshold_backward and friends) --------------------

// g where x > 0 else slope·g. relu (is_relu) gives exactly 0 where x <= 0, as torch's
// threshold_backward, even for an infinite or NaN incoming gradient (0·inf would be NaN).
Tensor leaky_relu_backward(const Tensor& g, const Tensor& x, double slope, bool is_relu) {
  if (is_relu) {
    return binary(g, x, "relu_backward",
                  []<class T>(T) { return [](T gv, T xv) { return xv > T(0) ? gv : T(0); }; });
  }
  return binary(g, x, "leaky_relu_backward", [slope]<class T>(T) {
    const T s = static_cast<T>(slope);
    return [s](T gv, T xv) { return xv > T(0) ? gv : gv * s; };
  });
}

Tensor tanh_backward(const Tensor& g, const Tensor& y) {
  return binary(g, y, "tanh_backward",
                []<class T>(T) { return [](T gv, T yv) { return gv * (T(1) - yv * yv); }; });
}

Tensor sigmoid_backward(const Tensor& g, const Tensor& y) {
  return binary(g, y, "sigmoid_backward",
                []<class T>(T) { return [](T gv, T yv) { return gv * yv * (T(1) - yv); }; });
}

// The softmax family along one axis of a contiguous tensor, viewed as [outer, n, inner].
struct AxisSplit {
  std::int64_t outer = 1, n = 1, inner = 1;
};

AxisSplit split(const Shape& shape, std::int64_t axis) {
  AxisSplit s;
  for (std::int64_t i = 0; i < axis; ++i) s.outer *= shape[static_cast<std::size_t>(i)];
  s.n = shape[static_cast<std::size_t>(axis)];
  for (std::size_t i = static_cast<std::size_t>(axis) + 1; i < shape.size(); ++i)
    s.inner *= shape[i];
  return s;
}

// log_softmax (log = true) or softmax of x along the axis.
template <class T>
Tensor softmax_kernel(const Tensor& xin, std::int64_t axis, bool log) {
  Tensor x = xin.contiguous();
  Tensor out = empty(x.shape(), dtype_of<T>);
  const AxisSplit s = split(x.shape(), axis);
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

// softmax: dx = y ⊙ (g - Σ g⊙y); log_softmax: dx = g - e^y ⊙ Σ g.
template <class T>
Tensor softmax_backward_kernel(const Tensor& gin, const Tensor& yin, std::int64_t axis, bool log) {
  Tensor g = gin.contiguous(), y = yin.contiguous();
  Tensor out = empty(y.shape(), dtype_of<T>);
  const AxisSplit s = split(y.shape(), axis);
  const T* pg = g.data_ptr<T>();
  const T* py = y.data_ptr<T>();
  T* po = out.data_ptr<T>();
  for (std::int64_t b = 0; b < s.outer; ++b) {
    for (std::int64_t i = 0; i < s.inner; ++i) {
      const std::int64_t base = b * s.n * s.inner + i;
      T dot = 0;
      for (std::int64_t k = 0; k < s.n; ++k) {
        const std::int64_t j = base + k * s.inner;
        dot += log ? pg[j] : pg[j] * py[j];
      }
      for (std::int64_t k = 0; k < s.n; ++k) {
        const std::int64_t j = base + k * s.inner;
        po[j] = log ? pg[j] - std::exp(py[j]) * dot : py[j] * (pg[j] - dot);
      }
    }
  }
  return out;
}

struct LeakyReluBackward final : Node {
  SavedVariable x;
  double slope = 0;
  bool is_relu = true;
  std::string_view name() const override { return is_relu ? "relu" : "leaky_relu"; }
  tensor_list apply(tensor_list&& g) override {
    return {leaky_relu_backward(g[0], x.unpack(name()), slope, is_relu)};
  }
  void release_saved() override { x.reset(); }
};

struct TanhBackward final : Node {
  SavedVariable y;
  std::string_view name() const override { return "tanh"; }
  tensor_list apply(tensor_list&& g) override { return {tanh_backward(g[0], y.unpack(name()))}; }
  void release_saved() override { y.reset(); }
};

struct SigmoidBackward final : Node {
  SavedVariable y;
  std::string_view name() const override { return "sigmoid"; }
  tensor_list apply(tensor_list&& g) override { return {sigmoid_backward(g[0], y.unpack(name()))}; }
  void release_saved() override { y.reset(); }
};

struct SoftmaxBackward final : Node {
  SavedVariable y;
  std::int64_t axis = -1;
  bool log = false;
  std::string_view name() const override { return log ? "log_softmax" : "softmax"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor yv = y.unpack(name());
    return {dispatch_floating(yv.dtype(), "softmax_backward", [&]<class T>() {
      return softmax_backward_kernel<T>(g[0], yv, axis, log);
    })};
  }
  void release_saved() override { y.reset(); }
};

Tensor leaky(const Tensor& a, double slope, bool is_relu) {
  // x where x > 0, else slope·x; NaN propagates. A zero slope (relu) gives exactly +0 for
  // x <= 0: x·0 would give -0, and NaN for x = -inf.
  const double s = is_relu ? 0.0 : slope;
  Tensor out = unary(a, is_relu ? "relu" : "leaky_relu", [s]<class T>(T) {
    const T st = static_cast<T>(s);
    return [st](T x) {
      if (x > T(0) || std::isnan(x)) return x;
      return st == T(0) ? T(0) : x * st;
    };
  });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<LeakyReluBackward>();
    node->x = SavedVariable(a);
    node->slope = slope;
    node->is_relu = is_relu;
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

Tensor softmax_impl(const Tensor& a, std::int64_t axis_in, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  check(a.dim() > 0, op, ": expected a tensor with at least one dimension, got shape ", a.shape());
  const std::int64_t axis = detail::normalize_axis(axis_in, a.dim(), a.shape(), op);
  Tensor out = dispatch_floating(
      a.dtype(), op, [&]<class T>() { return softmax_kernel<T>(a.detach(), axis, log); });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<SoftmaxBackward>();
    node->y = SavedVariable(out);
    node->axis = axis;
    node->log = log;
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

}  // namespace

Tensor relu(const Tensor& a) {
  return leaky(a, 0.0, true);
}
Tensor leaky_relu(const Tensor& a, double negative_slope) {
  return leaky(a, negative_slope, false);
}

Tensor tanh(const Tensor& a) {
  Tensor out = unary(a, "tanh", []<class T>(T) { return [](T x) { return std::tanh(x); }; });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<TanhBackward>();
    node->y = SavedVariable(out);
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

Tensor sigmoid(const Tensor& a) {
  Tensor out = unary(a, "sigmoid", []<class T>(T) {
    return [](T x) {
      if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
      const T e = std::exp(x);
      return e / (T(1) + e);
    };
  });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<SigmoidBackward>();
    node->y = SavedVariable(out);
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

Tensor softmax(const Tensor& a, std::int64_t axis) {
  return softmax_impl(a, axis, false);
}
Tensor log_softmax(const Tensor& a, std::int64_t axis) {
  return softmax_impl(a, axis, true);
}

// ---- gelu, softplus, elu -------------------------------------------------------------------

namespace {

Tensor gelu_backward(const Tensor& g, const Tensor& x) {
  return binary(g, x, "gelu_backward", []<class T>(T) {
    return [](T gv, T xv) {
      const T cdf = T(0.5) * (T(1) + std::erf(xv * T(M_SQRT1_2)));
      const T pdf = T(M_2_SQRTPI * M_SQRT1_2 * 0.5) * std::exp(T(-0.5) * xv * xv);
      return gv * (cdf + xv * pdf);
    };
  });
}

Tensor softplus_backward(const Tensor& g, const Tensor& x, double beta, double threshold) {
  return binary(g, x, "softplus_backward", [beta, threshold]<class T>(T) {
    const T b = static_cast<T>(beta), th = static_cast<T>(threshold);
    return [b, th](T gv, T xv) {
      const T z = std::exp(xv * b);
      return (xv * b) > th ? gv : gv * z / (z + T(1));
    };
  });
}

Tensor elu_backward(const Tensor& g, const Tensor& x, double alpha) {
  return binary(g, x, "elu_backward", [alpha]<class T>(T) {
    const T al = static_cast<T>(alpha);
    return [al](T gv, T xv) { return xv <= T(0) ? gv * al * std::exp(xv) : gv; };
  });
}

struct GeluBackward final : Node {
  SavedVariable x;
  std::string_view name() const override { return "gelu"; }
  tensor_list apply(tensor_list&& g) override { return {gelu_backward(g[0], x.unpack(name()))}; }
  void release_saved() override { x.reset(); }
};

struct SoftplusBackward final : Node {
  SavedVariable x;
  double beta = 1, threshold = 20;
  std::string_view name() const override { return "softplus"; }
  tensor_list apply(tensor_list&& g) override {
    return {softplus_backward(g[0], x.unpack(name()), beta, threshold)};
  }
  void release_saved() override { x.reset(); }
};

struct EluBackward final : Node {
  SavedVariable x;
  double alpha = 1;
  std::string_view name() const override { return "elu"; }
  tensor_list apply(tensor_list&& g) override {
    return {elu_backward(g[0], x.unpack(name()), alpha)};
  }
  void release_saved() override { x.reset(); }
};

}  // namespace

Tensor gelu(const Tensor& a) {
  Tensor out = unary(a, "gelu", []<class T>(T) {
    return [](T x) { return x * T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2))); };
  });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<GeluBackward>();
    node->x = SavedVariable(a);
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

Tensor softplus(const Tensor& a, double beta, double threshold) {
  check(beta != 0.0, "softplus: beta must be non-zero");
  Tensor out = unary(a, "softplus", [beta, threshold]<class T>(T) {
    const T b = static_cast<T>(beta), th = static_cast<T>(threshold);
    return [b, th](T x) { return (x * b) > th ? x : std::log1p(std::exp(x * b)) / b; };
  });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<SoftplusBackward>();
    node->x = SavedVariable(a);
    node->beta = beta;
    node->threshold = threshold;
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

Tensor elu(const Tensor& a, double alpha) {
  Tensor out = unary(a, "elu", [alpha]<class T>(T) {
    const T al = static_cast<T>(alpha);
    return [al](T x) { return x <= T(0) ? al * std::expm1(x) : x; };
  });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<EluBackward>();
    node->x = SavedVariable(a);
    node->alpha = alpha;
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

// ---- hardtanh, relu6 -----------------------------------------------------------------------

namespace {

// g where min_val < x < max_val, else 0: torch's hardtanh_backward, whose bounds (unlike
// clamp's) are excluded.
Tensor hardtanh_backward(const Tensor& g, const Tensor& x, double min_val, double max_val) {
  return binary(g, x, "hardtanh_backward", [min_val, max_val]<class T>(T) {
    const T lo = static_cast<T>(min_val), hi = static_cast<T>(max_val);
    return [lo, hi](T gv, T xv) { return (xv <= lo || xv >= hi) ? T(0) : gv; };
  });
}

struct HardtanhBackward final : Node {
  SavedVariable x;
  double min_val = -1, max_val = 1;
  const char* op = "hardtanh";
  std::string_view name() const override { return op; }
  tensor_list apply(tensor_list&& g) override {
    return {hardtanh_backward(g[0], x.unpack(name()), min_val, max_val)};
  }
  void release_saved() override { x.reset(); }
};

Tensor hardtanh_impl(const Tensor& a, double min_val, double max_val, const char* op) {
  check(!(min_val > max_val), op, ": min_val ", min_val, " is greater than max_val ", max_val);
  Tensor out = unary(a, op, [min_val, max_val]<class T>(T) {
    const T lo = static_cast<T>(min_val), hi = static_cast<T>(max_val);
    return [lo, hi](T x) { return x < lo ? lo : (x > hi ? hi : x); };  // NaN stays NaN
  });
  if (autograd::any_requires_grad({&a})) {
    auto node = std::make_shared<HardtanhBackward>();
    node->x = SavedVariable(a);
    node->min_val = min_val;
    node->max_val = max_val;
    node->op = op;
    autograd::record(node, {&a}, {&out});
  }
  return out;
}

}  // namespace

Tensor hardtanh(const Tensor& a, double min_val, double max_val) {
  return hardtanh_impl(a, min_val, max_val, "hardtanh");
}

Tensor relu6(const Tensor& a) {
  return hardtanh_impl(a, 0.0, 6.0, "relu6");
}

}  // namespace xgrad
