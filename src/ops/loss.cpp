#include "xgrad/ops/loss.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <functional>
#include "detail/kernel.hpp"
#include "ops/reduction_util.hpp"

#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad {

using autograd::Node;
using autograd::record_op;
using autograd::Saved;
using autograd::tangent;
using autograd::tensor_list;

namespace {

// The local derivatives of a loss's per-element (per-row for cross_entropy) terms w.r.t. input
// and target, written with xgrad ops so that they are differentiable again: {d_input,
// d_target} (d_target undefined when the target gets no gradient).
using LocalDerivative = std::function<tensor_list(const Tensor& input, const Tensor& target)>;

// How a loss's reduction scales the incoming gradient (or an outgoing tangent) of the reduced
// loss: mean divides by `divisor` (< 0: the number of per-element losses); nothing counted
// (every target ignored) makes the loss 0/0 = NaN and, as torch, the gradient 0.
Tensor reduction_scale(const Tensor& g, Reduction reduction, double divisor, std::int64_t count) {
  if (reduction != Reduction::mean) return g;
  const double d = divisor < 0 ? static_cast<double>(count) : divisor;
  return d == 0 ? mul(g, scalar_tensor(0.0, g.dtype())) : div(g, scalar_tensor(d, g.dtype()));
}

// Backward of a loss computed elementwise (or per row) then reduced: the local derivatives
// times the incoming gradient, broadcast back from the reduction. First order uses the
// derivatives the forward kernel computed beside the loss: the backward costs one
// multiplication, as before. A backward that is recorded (create_graph) or carries tangents
// (forward-over-reverse) — backward_needs_ops — recomputes them with `local` from the saved
// input and target instead: the same values, written with differentiable ops, so the loss is
// differentiable to any order.
struct LossBackward final : Node {
  const char* op = "loss";
  Saved input, target;
  Saved d_input, d_target;  // from the forward kernel: input's / target's shape (or none)
  LocalDerivative local;
  Shape loss_shape;  // shape of the per-element loss (before reduction)
  Shape grad_shape;  // loss_shape with trailing 1s so it broadcasts against d_input
  Reduction reduction = Reduction::mean;
  double divisor = -1;  // what mean divides by; < 0: the number of per-element losses
  std::string_view name() const override { return op; }
  tensor_list apply(tensor_list&& g) override {
    Tensor ge = reduction_scale(g[0], reduction, divisor, shape_numel(loss_shape));
    if (reduction == Reduction::none) ge = reshape(ge, grad_shape);
    Tensor di, dt;
    if (detail::backward_needs_ops()) {
      tensor_list d = local(saved(input), saved(target));
      di = d[0];
      if (d.size() > 1) dt = d[1];
    } else {
      di = saved(d_input);
      dt = saved(d_target);
    }
    tensor_list out(2);
    if (needs_input_grad(0)) out[0] = mul(di, ge);
    if (needs_input_grad(1) && dt.defined()) out[1] = mul(dt, ge);
    return out;
  }
};

// divisor < 0: mean divides by the number of elements.
Tensor reduce(const Tensor& per_element, Reduction r, double divisor) {
  switch (r) {
    case Reduction::none:
      return per_element;
    case Reduction::sum:
      return sum(per_element);
    case Reduction::mean:
      return divisor < 0 ? mean(per_element) : sum(per_element) / divisor;
  }
  return per_element;
}

void check_same_shape(const Tensor& input, const Tensor& target, const char* op) {
  if (input.shape() != target.shape())
    fail(op, ": input ", input.shape(), " and target ", target.shape(),
         " must have the same shape");
  detail::check_same_dtype(input, target, op);
}

// Reduces the per-element losses, records the node and runs the jvp rule. `local` gives the
// local derivatives with ops (create_graph and forward mode); d_input / d_target are the same
// values from the forward kernel (first-order backward).
Tensor finish(const char* op, const Tensor& input, const Tensor& target, Tensor per_element,
              Tensor d_input, Tensor d_target, Shape grad_shape, Reduction reduction,
              LocalDerivative local, double divisor = -1) {
  Tensor out;
  {
    no_grad guard;
    out = reduce(per_element, reduction, divisor);
  }
  const bool target_grad = target.defined() && target.requires_grad();
  record_op<LossBackward>({&input, &target}, {&out}, [&](LossBackward& n) {
    n.op = op;
    n.input = n.save(input);
    n.target = n.save(target);
    if (input.requires_grad()) n.d_input = n.save(d_input);
    if (target_grad) n.d_target = n.save(d_target);
    n.local = local;
    n.loss_shape = per_element.shape();
    n.grad_shape = grad_shape;
    n.reduction = reduction;
    n.divisor = divisor;
  });
  // The per-element tangent Σ (d_input·dx + d_target·dy) (summed over a row for
  // cross_entropy, whose int64 labels carry no tangent), reduced as the loss is.
  autograd::jvp_op(op, {&input, &target}, out, [&] {
    tensor_list d = local(input, target);
    Tensor t = mul(d[0], tangent(input));
    if (d.size() > 1 && d[1].defined()) t = add(t, mul(d[1], tangent(target)));
    if (t.shape() != per_element.shape()) t = sum(t, -1);
    return reduction == Reduction::none ? t
                                        : reduction_scale(sum(t), reduction, divisor, t.numel());
  });
  return out;
}

// mse: d/dx (x − y)² = 2(x − y), d/dy = −2(x − y).
tensor_list mse_derivative(const Tensor& x, const Tensor& y) {
  Tensor d = (x - y) * 2.0;
  return {d, neg(d)};
}

// The logistic function with xgrad ops, stable for any x: with the constants m = [x ≥ 0] and
// c = −1 where x ≥ 0, +1 elsewhere, e = exp(c·x) = e^−|x| ≤ 1 never overflows, and
// σ(x) = (m + (1 − m)·e) / (1 + e) is 1/(1 + e^−x) or e^x/(1 + e^x). Smooth in x at 0 too
// (both branches agree there to every order), unlike a form through |x|, whose derivative is
// 0 at 0.
Tensor stable_sigmoid(const Tensor& x) {
  Tensor m = dispatch_floating(x.dtype(), "sigmoid", [&]<class T>() {
    return detail::map_unary<T>(x.detach(), [](T v) { return v >= T(0) ? T(1) : T(0); });
  });
  Tensor c = sub(scalar_tensor(1.0, m.dtype()), m * 2.0);
  Tensor e = exp(mul(c, x));
  Tensor one = scalar_tensor(1.0, x.dtype());
  return div(add(m, mul(sub(one, m), e)), add(one, e));
}

// binary_cross_entropy_with_logits: d/dx = σ(x) − y, d/dy = −x.
tensor_list bce_logits_derivative(const Tensor& x, const Tensor& y) {
  return {sub(stable_sigmoid(x), y), neg(x)};
}

// cross_entropy's derivative w.r.t. row i of the logits is d_i = a_i·softmax(x_i) − B_i with
//   a_i = (1 − ε)·w[y_i] + ε/C·Σw,  B_ik = (1 − ε)·w[y_i]·[k = y_i] + ε/C·w[k]
// (a_i = 0 and B_i = 0 for an ignored row): the constants, a [N, 1] and B [N, C] in x's dtype.
// d_i's derivative w.r.t. x_i is a_i·(diag(p) − ppᵀ), the Hessian of the row's loss.
struct CeRowConstants {
  Tensor a, b;
};
CeRowConstants ce_row_constants(const Tensor& x, const Tensor& labels, const Tensor& weight,
                                std::int64_t ignore, double eps) {
  const std::int64_t n = x.shape()[0], c = x.shape()[1];
  CeRowConstants k{empty({n, 1}, x.dtype()), empty({n, c}, x.dtype())};
  Tensor lab = labels.contiguous();
  const std::int64_t* pl = lab.data_ptr<std::int64_t>();
  dispatch_floating(x.dtype(), "cross_entropy", [&]<class T>() {
    const T* pw = weight.defined() ? weight.data_ptr<T>() : nullptr;
    auto w_of = [&](std::int64_t j) { return pw ? static_cast<double>(pw[j]) : 1.0; };
    double w_all = 0;
    for (std::int64_t j = 0; j < c; ++j) w_all += w_of(j);
    const double smooth = eps / static_cast<double>(c);
    T* pa = k.a.data_ptr<T>();
    T* pb = k.b.data_ptr<T>();
    for (std::int64_t i = 0; i < n; ++i) {
      const bool ignored = pl[i] == ignore;
      const double wy = ignored ? 0.0 : w_of(pl[i]);
      pa[i] = ignored ? T(0) : static_cast<T>((1.0 - eps) * wy + smooth * w_all);
      for (std::int64_t j = 0; j < c; ++j)
        pb[i * c + j] =
            ignored
                ? T(0)
                : static_cast<T>((1.0 - eps) * wy * (j == pl[i] ? 1.0 : 0.0) + smooth * w_of(j));
    }
  });
  return k;
}

// A per-sample loss from the per-element losses of one sample ([B, ...] physical, reduction
// none): reduced over each sample's elements as `reduction` asks.
Tensor reduce_per_sample(const Tensor& per_element, Reduction reduction) {
  if (reduction == Reduction::none || per_element.dim() == 1) return per_element;
  Shape axes;
  for (std::int64_t d = 1; d < per_element.dim(); ++d) axes.push_back(d);
  return reduction == Reduction::sum ? sum(per_element, axes) : mean(per_element, axes);
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  if (autograd::any_batched(input, target))
    return autograd::vmap_op("mse_loss", {input, target}, [&](const autograd::BatchedArgs& p) {
      return reduce_per_sample(mse_loss(p.expanded(0), p.expanded(1), Reduction::none), reduction);
    });
  check_same_shape(input, target, "mse_loss");
  Tensor per, d_in, d_tg;
  dispatch_floating(input.dtype(), "mse_loss", [&]<class T>() {
    Tensor x = input.detach().contiguous(), y = target.detach().contiguous();
    per = empty(x.shape(), x.dtype());
    d_in = empty(x.shape(), x.dtype());
    const T* px = x.data_ptr<T>();
    const T* py = y.data_ptr<T>();
    T* pl = per.data_ptr<T>();
    T* pd = d_in.data_ptr<T>();
    for (std::int64_t i = 0, n = x.numel(); i < n; ++i) {
      const T d = px[i] - py[i];
      pl[i] = d * d;
      pd[i] = T(2) * d;
    }
  });
  if (target.requires_grad()) {
    no_grad guard;
    d_tg = neg(d_in);
  }
  return finish("mse_loss", input, target, per, d_in, d_tg, input.shape(), reduction,
                mse_derivative);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction reduction) {
  if (autograd::any_batched(logits, targets))
    return autograd::vmap_op(
        "binary_cross_entropy_with_logits", {logits, targets}, [&](const autograd::BatchedArgs& p) {
          return reduce_per_sample(
              binary_cross_entropy_with_logits(p.expanded(0), p.expanded(1), Reduction::none),
              reduction);
        });
  const char* op = "binary_cross_entropy_with_logits";
  check_same_shape(logits, targets, op);
  Tensor per, d_in, d_tg;
  dispatch_floating(logits.dtype(), op, [&]<class T>() {
    Tensor x = logits.detach().contiguous(), y = targets.detach().contiguous();
    per = empty(x.shape(), x.dtype());
    d_in = empty(x.shape(), x.dtype());
    d_tg = empty(x.shape(), x.dtype());
    const T* px = x.data_ptr<T>();
    const T* py = y.data_ptr<T>();
    T* pl = per.data_ptr<T>();
    T* pd = d_in.data_ptr<T>();
    T* pt = d_tg.data_ptr<T>();
    for (std::int64_t i = 0, n = x.numel(); i < n; ++i) {
      const T v = px[i], t = py[i];
      // max(x,0) - x·y + log(1 + e^-|x|): no overflow for any finite x.
      pl[i] = std::max(v, T(0)) - v * t + std::log1p(std::exp(-std::abs(v)));
      const T s = v >= T(0) ? T(1) / (T(1) + std::exp(-v)) : std::exp(v) / (T(1) + std::exp(v));
      pd[i] = s - t;
      pt[i] = -v;
    }
  });
  return finish(op, logits, targets, per, d_in, d_tg, logits.shape(), reduction,
                bce_logits_derivative);
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight,
                            Reduction reduction) {
  if (autograd::any_batched(input, target, weight))
    return autograd::vmap_op(
        "binary_cross_entropy", {input, target, weight}, [&](const autograd::BatchedArgs& p) {
          return reduce_per_sample(
              binary_cross_entropy(p.expanded(0), p.expanded(1), p.expanded(2), Reduction::none),
              reduction);
        });
  const char* op = "binary_cross_entropy";
  check_same_shape(input, target, op);
  Tensor w;
  if (weight.defined()) {
    detail::check_same_dtype(input, weight, op);
    if (detail::broadcast_shapes(weight.shape(), input.shape(), op) != input.shape())
      fail(op, ": weight ", weight.shape(), " cannot be broadcast to the input's shape ",
           input.shape());
    w = detail::broadcast_view(weight.detach(), input.shape()).contiguous();
  }
  Tensor per, d_in, d_tg;
  dispatch_floating(input.dtype(), op, [&]<class T>() {
    Tensor x = input.detach().contiguous(), y = target.detach().contiguous();
    per = empty(x.shape(), x.dtype());
    d_in = empty(x.shape(), x.dtype());
    d_tg = empty(x.shape(), x.dtype());
    const T* px = x.data_ptr<T>();
    const T* py = y.data_ptr<T>();
    const T* pw = w.defined() ? w.data_ptr<T>() : nullptr;
    T* pl = per.data_ptr<T>();
    T* pd = d_in.data_ptr<T>();
    T* pt = d_tg.data_ptr<T>();
    for (std::int64_t i = 0, n = x.numel(); i < n; ++i) {
      const T v = px[i], t = py[i];
      if (!(v >= T(0) && v <= T(1)))
        fail(op, ": input ", v, " at position ", i, " of ", x.shape(),
             " is not a probability in [0, 1] (for logits use binary_cross_entropy_with_logits)");
      if (!(t >= T(0) && t <= T(1)))
        fail(op, ": target ", t, " at position ", i, " of ", y.shape(), " is not in [0, 1]");
      const T wi = pw ? pw[i] : T(1);
      // torch's kernel: (y − 1)·max(log(1 − x), −100) − y·max(log x, −100).
      const T log_x = std::max(std::log(v), T(-100));
      const T log_1mx = std::max(std::log1p(-v), T(-100));
      pl[i] = wi * ((t - T(1)) * log_1mx - t * log_x);
      // torch's binary_cross_entropy_backward: (x − y) / max(x(1 − x), 1e-12).
      pd[i] = wi * (v - t) / std::max((T(1) - v) * v, T(1e-12));
      pt[i] = wi * (log_1mx - log_x);
    }
  });
  // The same derivatives with ops (w constant): d/dx = w·(x − y)/max(x(1 − x), 1e-12),
  // d/dy = w·(max(log(1 − x), −100) − max(log x, −100)). The argument of each clamped log
  // is clamped at e^-100 first, so that its derivative at v = 0 is 0 (the clamped log is flat
  // there) where clamping only after the log would give 0·(1/0) = NaN; the clamp after the log
  // keeps the value exactly −100 (e^-100 is subnormal in float32).
  auto local = [w](const Tensor& x, const Tensor& y) -> tensor_list {
    constexpr double inf = std::numeric_limits<double>::infinity();
    const double floor = std::exp(-100.0);
    auto clamped_log = [&](const Tensor& v) {
      return clamp(log(clamp(v, floor, inf)), -100.0, inf);
    };
    Tensor di = div(x - y, clamp(x * (1.0 - x), 1e-12, inf));
    Tensor dt = clamped_log(1.0 - x) - clamped_log(x);
    if (w.defined()) return {mul(w, di), mul(w, dt)};
    return {di, dt};
  };
  return finish(op, input, target, per, d_in, d_tg, input.shape(), reduction, local);
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction) {
  return binary_cross_entropy(input, target, Tensor(), reduction);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction) {
  CrossEntropyOptions options;
  options.reduction = reduction;
  return cross_entropy(logits, labels, options);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels,
                     const CrossEntropyOptions& options) {
  if (autograd::any_batched(logits, labels, options.weight)) {
    // Class weights or ignored labels make the mean a weighted one per sample: run per sample.
    if (options.weight.defined() ||
        (options.ignore_index >= 0 && options.reduction == Reduction::mean))
      return autograd::vmap_fallback("cross_entropy", {logits, labels, options.weight},
                                     [options](const std::vector<Tensor>& s) {
                                       CrossEntropyOptions o = options;
                                       o.weight = s[2];
                                       return cross_entropy(s[0], s[1], o);
                                     });
    return autograd::vmap_op("cross_entropy", {logits, labels},
                             [&](const autograd::BatchedArgs& p) {
                               // The samples' rows folded into one batch of rows: [B, N, C] ->
                               // [B·N, C].
                               const Tensor x = p.expanded(0), y = p.expanded(1);
                               const std::int64_t C = x.shape().back();
                               CrossEntropyOptions o = options;
                               o.reduction = Reduction::none;
                               Tensor l = cross_entropy(reshape(x, {-1, C}), reshape(y, {-1}), o);
                               return reduce_per_sample(reshape(l, y.shape()), options.reduction);
                             });
  }
  const char* op = "cross_entropy";
  if (logits.dim() != 2) fail(op, ": expected logits of shape [N,C], got ", logits.shape());
  if (labels.dtype() != Dtype::int64)
    fail(op, ": expected int64 class labels, got ", dtype_name(labels.dtype()), " ",
         labels.shape());
  if (labels.dim() != 1 || labels.shape()[0] != logits.shape()[0])
    fail(op, ": logits ", logits.shape(), " and labels ", labels.shape(),
         " do not match (expected labels [", logits.shape()[0], "])");
  const std::int64_t n = logits.shape()[0], c = logits.shape()[1];
  const double eps = options.label_smoothing;
  if (!(eps >= 0.0 && eps <= 1.0))
    fail(op, ": label_smoothing must be between 0.0 and 1.0, got ", eps);
  const std::int64_t ignore = options.ignore_index;
  Tensor weight;
  if (options.weight.defined()) {
    if (options.weight.shape() != Shape{c})
      fail(op, ": expected a weight of shape [", c, "] (one per class), got ",
           options.weight.shape());
    detail::check_same_dtype(logits, options.weight, op);
    weight = options.weight.detach().contiguous();
  }
  Tensor lab = labels.contiguous();
  const std::int64_t* pl = lab.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i)
    if (pl[i] != ignore && (pl[i] < 0 || pl[i] >= c))
      fail(op, ": label ", pl[i], " at position ", i, " is out of range for ", c, " classes");
  Tensor per, d_in;
  double total_weight = 0;  // what mean divides by: Σ weight[label] over the counted rows
  dispatch_floating(logits.dtype(), op, [&]<class T>() {
    Tensor x = logits.detach().contiguous();
    per = empty({n}, x.dtype());
    d_in = empty({n, c}, x.dtype());
    const T* px = x.data_ptr<T>();
    const T* pw = weight.defined() ? weight.data_ptr<T>() : nullptr;
    T* pper = per.data_ptr<T>();
    T* pd = d_in.data_ptr<T>();
    double w_all = 0;  // Σ_c weight[c]
    for (std::int64_t k = 0; k < c; ++k) w_all += pw ? static_cast<double>(pw[k]) : 1.0;
    // a per-thread scratch row, reused from call to call (issue 14: no allocation per step)
    thread_local std::vector<double> e;
    e.resize(static_cast<std::size_t>(c));
    for (std::int64_t i = 0; i < n; ++i) {
      const T* row = px + i * c;
      T* drow = pd + i * c;
      if (pl[i] == ignore) {  // contributes 0 to the loss and the gradient
        pper[i] = T(0);
        std::fill(drow, drow + c, T(0));
        continue;
      }
      const std::int64_t y = pl[i];
      const double wy = pw ? static_cast<double>(pw[y]) : 1.0;
      total_weight += wy;
      T mx = -std::numeric_limits<T>::infinity();
      for (std::int64_t k = 0; k < c; ++k) mx = std::max(mx, row[k]);
      double total = 0;
      for (std::int64_t k = 0; k < c; ++k) {
        e[static_cast<std::size_t>(k)] = std::exp(static_cast<double>(row[k] - mx));
        total += e[static_cast<std::size_t>(k)];
      }
      const double log_total = std::log(total);
      // -log_softmax(x)_k = (max − x_k) + log Σ exp(x − max): the difference max − x_k first.
      // (max + log Σ) − x_k would cancel: [1e8, 1e8] in float32 would give 0, not log 2.
      auto nll = [&](std::int64_t k) { return static_cast<double>(mx - row[k]) + log_total; };
      double loss = (1.0 - eps) * wy * nll(y);
      if (eps > 0) {
        // Label smoothing (torch 1.13): + eps/C · Σ_k weight[k]·(−log_softmax(x)_k).
        double smooth = 0;
        for (std::int64_t k = 0; k < c; ++k)
          smooth += (pw ? static_cast<double>(pw[k]) : 1.0) * nll(k);
        loss += eps / static_cast<double>(c) * smooth;
      }
      pper[i] = static_cast<T>(loss);
      // d loss_i / d x_ik = (1−eps)·w_y·(p_k − [k = y]) + eps/C·(W·p_k − w_k), p = softmax(x_i),
      // W = Σ_k w_k; without weights and smoothing, p_k − [k = y].
      for (std::int64_t k = 0; k < c; ++k) {
        const double p = e[static_cast<std::size_t>(k)] / total;
        double d = (1.0 - eps) * wy * (p - (k == y ? 1.0 : 0.0));
        if (eps > 0)
          d += eps / static_cast<double>(c) * (w_all * p - (pw ? static_cast<double>(pw[k]) : 1.0));
        drow[k] = static_cast<T>(d);
      }
    }
  });
  // The same derivative with ops, for create_graph and forward mode (its constants are made
  // only then, so the forward costs what it did).
  static constexpr auto derivative = [](const Tensor& x, const Tensor& y, const Tensor& w,
                                        std::int64_t ig, double e) -> tensor_list {
    const CeRowConstants k = ce_row_constants(x, y, w, ig, e);
    Tensor p = exp(sub(x, logsumexp(x, 1, /*keepdim=*/true)));
    return {sub(mul(k.a, p), k.b)};
  };
  // Without class weights the closure holds two numbers: it fits std::function's inline room
  // and recording allocates nothing for it.
  LocalDerivative local;
  if (weight.defined()) {
    local = [weight, ignore, eps](const Tensor& x, const Tensor& y) {
      return derivative(x, y, weight, ignore, eps);
    };
  } else {
    local = [ignore, eps](const Tensor& x, const Tensor& y) {
      return derivative(x, y, Tensor(), ignore, eps);
    };
  }
  // Mean divides by Σ weight[label] over the rows not ignored (their number without weights),
  // as torch; 0/0 = NaN when every row is ignored.
  // The labels take the target's slot (no gradient: int64), so graph dumps can draw them.
  return finish(op, logits, labels, per, d_in, Tensor(), {n, 1}, options.reduction, local,
                total_weight);
}

}  // namespace xgrad
