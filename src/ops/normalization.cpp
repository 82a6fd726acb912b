#include "xgrad/ops/normalization.hpp"

#include <array>
#include <cmath>
#include <vector>

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

// x viewed as [N, C, S], S the product of the spatial dimensions.
struct Dims {
  std::int64_t N = 0, C = 0, S = 1;
  std::int64_t per_channel() const { return N * S; }
};

Dims dims_of(const Shape& shape) {
  Dims d;
  d.N = shape[0];
  d.C = shape[1];
  for (std::size_t i = 2; i < shape.size(); ++i) d.S *= shape[i];
  return d;
}

// Element i (stride-aware) of a 1-D tensor as double; `fallback` when t is undefined.
template <class T>
std::vector<double> channel_values(const Tensor& t, std::int64_t C, double fallback) {
  std::vector<double> v(static_cast<std::size_t>(C), fallback);
  if (!t.defined()) return v;
  const T* p = t.data_ptr<T>();
  const std::int64_t st = t.strides()[0];
  for (std::int64_t c = 0; c < C; ++c) v[static_cast<std::size_t>(c)] = p[c * st];
  return v;
}

// y = x·alpha_c + beta_c with alpha = invstd·w, beta = b − mean·invstd·w (torch's transform).
template <class T>
Tensor bn_transform(const Tensor& xc, const Dims& d, const std::vector<double>& mean,
                    const std::vector<double>& invstd, const std::vector<double>& w,
                    const std::vector<double>& b) {
  Tensor y = empty(xc.shape(), dtype_of<T>);
  const T* px = xc.data_ptr<T>();
  T* py = y.data_ptr<T>();
  for (std::int64_t c = 0; c < d.C; ++c) {
    const auto k = static_cast<std::size_t>(c);
    const double alpha = invstd[k] * w[k];
    const double beta = b[k] - mean[k] * alpha;
    for (std::int64_t n = 0; n < d.N; ++n) {
      const std::int64_t base = (n * d.C + c) * d.S;
      for (std::int64_t s = 0; s < d.S; ++s)
        py[base + s] = static_cast<T>(static_cast<double>(px[base + s]) * alpha + beta);
    }
  }
  return y;
}

// Mean and biased variance per channel (two passes, in double).
template <class T>
void bn_stats(const Tensor& xc, const Dims& d, std::vector<double>& mean,
              std::vector<double>& var) {
  const T* px = xc.data_ptr<T>();
  const double M = static_cast<double>(d.per_channel());
  mean.assign(static_cast<std::size_t>(d.C), 0.0);
  var.assign(static_cast<std::size_t>(d.C), 0.0);
  for (std::int64_t c = 0; c < d.C; ++c) {
    const auto k = static_cast<std::size_t>(c);
    double s = 0;
    for (std::int64_t n = 0; n < d.N; ++n) {
      const T* p = px + (n * d.C + c) * d.S;
      for (std::int64_t i = 0; i < d.S; ++i) s += p[i];
    }
    mean[k] = s / M;
    double q = 0;
    for (std::int64_t n = 0; n < d.N; ++n) {
      const T* p = px + (n * d.C + c) * d.S;
      for (std::int64_t i = 0; i < d.S; ++i) {
        const double e = static_cast<double>(p[i]) - mean[k];
        q += e * e;
      }
    }
    var[k] = q / M;
  }
}

// running ← (1 − momentum)·running + momentum·value, in place, bumping the version.
template <class T>
void update_running(const Tensor& running, const std::vector<double>& value, double momentum) {
  T* p = running.data_ptr<T>();
  const std::int64_t st = running.strides()[0];
  for (std::size_t c = 0; c < value.size(); ++c) {
    T& r = p[static_cast<std::int64_t>(c) * st];
    r = static_cast<T>(momentum * value[c] + (1.0 - momentum) * static_cast<double>(r));
  }
  running.storage()->bump_version();
}

// ---- the derivatives with ops (create_graph and forward mode) ----------------------------

// The reduced axes of x: all but the channel axis 1.
Shape stat_axes(const Tensor& x) {
  Shape axes{0};
  for (std::int64_t i = 2; i < x.dim(); ++i) axes.push_back(i);
  return axes;
}

// A [C] tensor seen as [1, C, 1, ...], to broadcast against x.
Tensor per_channel(const Tensor& t, const Tensor& x) {
  Shape s(static_cast<std::size_t>(x.dim()), 1);
  s[1] = x.shape()[1];
  return reshape(t, s);
}
Tensor per_channel(const std::vector<double>& v, const Tensor& x) {
  return per_channel(from_data(v.data(), {static_cast<std::int64_t>(v.size())}).to(x.dtype()), x);
}

// x̂ = (x − μ)·invstd, and invstd as [1, C, 1, ...]. Training: μ and σ² of the batch, with ops,
// so differentiable in x (the same values as the forward's float64 statistics up to
// rounding); evaluation: the running statistics, constants.
struct Normalized {
  Tensor xhat, invstd;
  Shape axes;
};
Normalized normalize(const Tensor& x, bool training, const std::vector<double>& mean,
                     const std::vector<double>& invstd, double eps) {
  Normalized nz;
  nz.axes = stat_axes(x);
  if (training) {
    Tensor xc = sub(x, xgrad::mean(x, nz.axes, /*keepdim=*/true));
    Tensor var = xgrad::mean(mul(xc, xc), nz.axes, /*keepdim=*/true);
    nz.invstd = 1.0 / sqrt(var + eps);
    nz.xhat = mul(xc, nz.invstd);
  } else {
    nz.invstd = per_channel(invstd, x);
    nz.xhat = mul(sub(x, per_channel(mean, x)), nz.invstd);
  }
  return nz;
}

// The derivative of x̂ along a direction d of x: d·invstd in evaluation; in training, with
// the batch statistics moving too, invstd·(d − mean(d) − x̂·mean(d·x̂)) (means over the
// reduced axes). Linear in d; also the vjp of x̂ (the map is self-adjoint).
Tensor xhat_derivative(const Tensor& d, const Normalized& nz, bool training) {
  if (!training) return mul(d, nz.invstd);
  Tensor centred = sub(d, mean(d, nz.axes, /*keepdim=*/true));
  Tensor proj = mul(nz.xhat, mean(mul(d, nz.xhat), nz.axes, /*keepdim=*/true));
  return mul(sub(centred, proj), nz.invstd);
}

// vjp with ops: dx = xhat_derivative(g·w), dw = Σ g·x̂, db = Σ g (sums over the reduced axes).
tensor_list batch_norm_vjp(const Tensor& g, const Normalized& nz, const Tensor& w, bool training,
                           std::array<bool, 3> needs) {
  tensor_list out(3);
  if (needs[0]) out[0] = xhat_derivative(w.defined() ? mul(g, per_channel(w, g)) : g, nz, training);
  if (needs[1]) out[1] = sum(mul(g, nz.xhat), nz.axes);
  if (needs[2]) out[2] = sum(g, nz.axes);
  return out;
}

// Batch norm's backward. First order runs the fused kernel below, as fast as before. A backward
// that is recorded (create_graph) or carries tangents (forward-over-reverse) runs
// batch_norm_vjp instead — the same formula written with xgrad ops — so batch norm is
// differentiable to any order (torch has a batch_norm double-backward formula for the same
// purpose).
struct BatchNormBackward final : Node {
  Saved x, weight;
  std::vector<double> mean, invstd;  // the statistics the forward normalised with
  bool training = true;
  double eps = 0;
  std::string_view name() const override { return "batch_norm"; }

  tensor_list apply(tensor_list&& g) override {
    Tensor xv = saved(x);
    Tensor wv = saved(weight);
    if (detail::backward_needs_ops()) {
      const Normalized nz = normalize(xv, training, mean, invstd, eps);
      return batch_norm_vjp(g[0], nz, wv, training,
                            {needs_input_grad(0), needs_input_grad(1), needs_input_grad(2)});
    }
    return dispatch_floating(xv.dtype(), "batch_norm_backward", [&]<class T>() {
      Tensor xc = xv.contiguous();
      Tensor gc = g[0].contiguous();
      const Dims d = dims_of(xc.shape());
      const std::vector<double> w = channel_values<T>(wv, d.C, 1.0);
      const double M = static_cast<double>(d.per_channel());
      const T* px = xc.data_ptr<T>();
      const T* pg = gc.data_ptr<T>();
      tensor_list out(3);
      Tensor dx, dw, db;
      if (needs_input_grad(0)) dx = empty(xc.shape(), dtype_of<T>);
      if (needs_input_grad(1)) dw = empty({d.C}, dtype_of<T>);
      if (needs_input_grad(2)) db = empty({d.C}, dtype_of<T>);
      for (std::int64_t c = 0; c < d.C; ++c) {
        const auto k = static_cast<std::size_t>(c);
        double sum_g = 0, sum_g_xmu = 0;
        for (std::int64_t n = 0; n < d.N; ++n) {
          const std::int64_t base = (n * d.C + c) * d.S;
          for (std::int64_t s = 0; s < d.S; ++s) {
            const double gv = pg[base + s];
            sum_g += gv;
            sum_g_xmu += gv * (static_cast<double>(px[base + s]) - mean[k]);
          }
        }
        if (dw.defined()) dw.data_ptr<T>()[c] = static_cast<T>(sum_g_xmu * invstd[k]);
        if (db.defined()) db.data_ptr<T>()[c] = static_cast<T>(sum_g);
        if (!dx.defined()) continue;
        T* pdx = dx.data_ptr<T>();
        const double scale = invstd[k] * w[k];
        // Training: dx = w·invstd·(g − mean(g) − (x − μ)·invstd²·mean(g·(x − μ))).
        const double mg = training ? sum_g / M : 0.0;
        const double proj = training ? invstd[k] * invstd[k] * sum_g_xmu / M : 0.0;
        for (std::int64_t n = 0; n < d.N; ++n) {
          const std::int64_t base = (n * d.C + c) * d.S;
          for (std::int64_t s = 0; s < d.S; ++s) {
            const double xmu = static_cast<double>(px[base + s]) - mean[k];
            pdx[base + s] = static_cast<T>((pg[base + s] - mg - xmu * proj) * scale);
          }
        }
      }
      out[0] = dx;
      out[1] = dw;
      out[2] = db;
      return out;
    });
  }
};

void check_channel_tensor(const Tensor& t, const Tensor& x, std::int64_t C, const char* what) {
  if (!t.defined()) return;
  check(t.shape() == Shape{C}, "batch_norm: ", what, " must have shape [", C,
        "] for an input of shape ", x.shape(), ", got ", t.shape());
  check(t.dtype() == x.dtype(), "batch_norm: ", what, " is ", dtype_name(t.dtype()),
        " but the input is ", dtype_name(x.dtype()));
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  if (autograd::any_batched(x, running_mean, running_var, weight, bias)) {
    check(!training || !running_mean.defined(), "batch_norm: inside vmap, training mode would update ",
          "the shared running statistics once per sample; use eval mode or no running statistics");
    return autograd::vmap_fallback("batch_norm", {x, running_mean, running_var, weight, bias},
                                   [&](const std::vector<Tensor>& s) {
                                     return batch_norm(s[0], s[1], s[2], s[3], s[4], training, momentum, eps);
                                   });
  }
  check(x.dim() >= 2, "batch_norm: expected an input of shape [N, C] or [N, C, *], got ",
        x.shape());
  const Dims d = dims_of(x.shape());
  check_channel_tensor(running_mean, x, d.C, "running_mean");
  check_channel_tensor(running_var, x, d.C, "running_var");
  check_channel_tensor(weight, x, d.C, "weight");
  check_channel_tensor(bias, x, d.C, "bias");
  check(running_mean.defined() == running_var.defined(),
        "batch_norm: running_mean and running_var must both be given or both be undefined");
  check(!(running_mean.defined() && (running_mean.requires_grad() || running_var.requires_grad())),
        "batch_norm: running_mean and running_var are buffers and must not require grad");
  check(training || running_mean.defined(),
        "batch_norm: running_mean and running_var are required in evaluation mode "
        "(training = false)");
  check(!training || d.per_channel() > 1,
        "batch_norm: expected more than 1 value per channel when training, got input of shape ",
        x.shape());
  check(eps >= 0, "batch_norm: eps must be non-negative, got ", eps);

  std::vector<double> mean, invstd;
  Tensor out = dispatch_floating(x.dtype(), "batch_norm", [&]<class T>() {
    Tensor xc = x.detach().contiguous();
    if (training) {
      std::vector<double> var;
      bn_stats<T>(xc, d, mean, var);
      invstd.resize(var.size());
      for (std::size_t c = 0; c < var.size(); ++c) invstd[c] = 1.0 / std::sqrt(var[c] + eps);
      if (running_mean.defined()) {
        no_grad guard;
        const double M = static_cast<double>(d.per_channel());
        std::vector<double> unbiased(var.size());
        for (std::size_t c = 0; c < var.size(); ++c) unbiased[c] = var[c] * M / (M - 1.0);
        update_running<T>(running_mean, mean, momentum);
        update_running<T>(running_var, unbiased, momentum);
      }
    } else {
      mean = channel_values<T>(running_mean, d.C, 0.0);
      invstd = channel_values<T>(running_var, d.C, 1.0);
      for (auto& v : invstd) v = 1.0 / std::sqrt(v + eps);
    }
    return bn_transform<T>(xc, d, mean, invstd, channel_values<T>(weight, d.C, 1.0),
                           channel_values<T>(bias, d.C, 0.0));
  });
  record_op<BatchNormBackward>({&x, &weight, &bias}, {&out}, [&](BatchNormBackward& n) {
    n.x = n.save(x);
    n.weight = n.save(weight);
    n.mean = mean;
    n.invstd = invstd;
    n.training = training;
    n.eps = eps;
  });
  // jvp: dy = dx̂·w + x̂·dw + db, dx̂ = xhat_derivative(dx).
  autograd::jvp_op("batch_norm", {&x, &weight, &bias}, out, [&] {
    const Normalized nz = normalize(x, training, mean, invstd, eps);
    Tensor dy = xhat_derivative(tangent(x), nz, training);
    if (weight.defined()) {
      dy = add(mul(dy, per_channel(weight, x)), mul(nz.xhat, per_channel(tangent(weight), x)));
    }
    if (bias.defined()) dy = add(dy, per_channel(tangent(bias), x));
    return dy;
  });
  return out;
}

}  // namespace xgrad
