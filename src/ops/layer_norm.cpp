// layer_norm: a float64-statistics forward kernel, a node whose first-order backward is one
// fused pass and whose recorded backward (create_graph, forward-over-reverse) is written with
// xgrad ops, and a jvp written with ops. The structure of batch_norm (normalization.cpp) with
// the statistics taken per row instead of per channel.
#include "xgrad/ops/layer_norm.hpp"

#include <array>
#include <cmath>
#include <type_traits>
#include <vector>

#include "detail/kernel.hpp"
#include "detail/parallel.hpp"
#include "ops/reduction_util.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/reduction.hpp"

namespace xgrad {

using autograd::jvp_op;
using autograd::Node;
using autograd::record_op;
using autograd::Saved;
using autograd::tangent;
using autograd::tensor_list;

namespace {

// x viewed as [R, M]: R rows, each normalised over its M elements.
struct Rows {
  std::int64_t R = 1, M = 1;
  Shape norm_axes;  // the trailing axes
  Shape row_axes;   // the leading axes (summed for the weight's and bias's gradients)
};

Rows rows_of(const Tensor& x, std::size_t nd) {
  Rows r;
  const std::size_t lead = static_cast<std::size_t>(x.dim()) - nd;
  for (std::size_t i = 0; i < static_cast<std::size_t>(x.dim()); ++i) {
    if (i < lead) {
      r.R *= x.shape()[i];
      r.row_axes.push_back(static_cast<std::int64_t>(i));
    } else {
      r.M *= x.shape()[i];
      r.norm_axes.push_back(static_cast<std::int64_t>(i));
    }
  }
  return r;
}

// Rows per chunk of the batch pool's parallel_for (a [B·T, 128] activation: 2,048 rows).
constexpr std::int64_t kRowGrain = 256;

// ---- float32 row kernels ---------------------------------------------------------------------
// float32 rows are normalised in float arithmetic, as torch's CPU kernel does, with sixteen
// interleaved partial sums (two AVX2 vectors), so that the loops vectorise with the summation
// order written in the source (-ffp-contract=off, no fast-math: both variants give the same
// bits). In the GPT's profile they take half the time of the float64 loops (forward and
// backward). Written once (always inline) and instantiated twice: as is and in an
// XGRAD_TARGET_AVX2 wrapper (run-time dispatch, detail/cpu.hpp). The weight's and bias's
// gradients gather in float over blocks of kFlushRows rows and in double across blocks.
// float64 keeps the double loops below the kernels.
constexpr int kLanes = 16;
constexpr std::int64_t kFlushRows = 16;

[[gnu::always_inline]] inline float lanes_total(const float* s) {
  float t[kLanes / 2];
  for (int u = 0; u < kLanes / 2; ++u) t[u] = s[u] + s[u + kLanes / 2];
  return ((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7]));
}

// Σ f(j) for j < n, in kLanes partial sums.
template <class F>
[[gnu::always_inline]] inline float sum_lanes(std::int64_t n, F f) {
  float s[kLanes] = {};
  std::int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int u = 0; u < kLanes; ++u) s[u] += f(j + u);
  for (int u = 0; j < n; ++j, ++u) s[u] += f(j);
  return lanes_total(s);
}

struct LnForwardArgs {
  const float* x;
  float* y;
  const float* w;  // null: 1
  const float* b;  // null: 0
  double* mean;
  double* invstd;
  std::int64_t M;
  double eps;
};

[[gnu::always_inline]] inline void ln_forward_rows_impl(const LnForwardArgs& a, std::int64_t r0,
                                                        std::int64_t r1) {
  const std::int64_t M = a.M;
  for (std::int64_t r = r0; r < r1; ++r) {
    const float* __restrict row = a.x + r * M;
    float* __restrict out = a.y + r * M;
    const float mu = sum_lanes(M, [&](std::int64_t j) { return row[j]; }) / static_cast<float>(M);
    const float q = sum_lanes(M, [&](std::int64_t j) {
      const float e = row[j] - mu;
      return e * e;
    });
    const float is = static_cast<float>(
        1.0 / std::sqrt(static_cast<double>(q) / static_cast<double>(M) + a.eps));
    a.mean[r] = mu;
    a.invstd[r] = is;
    if (a.w != nullptr && a.b != nullptr) {
      const float* __restrict w = a.w;
      const float* __restrict b = a.b;
      for (std::int64_t j = 0; j < M; ++j) out[j] = (row[j] - mu) * is * w[j] + b[j];
    } else {
      for (std::int64_t j = 0; j < M; ++j) {
        float v = (row[j] - mu) * is;
        if (a.w != nullptr) v = v * a.w[j];
        if (a.b != nullptr) v = v + a.b[j];
        out[j] = v;
      }
    }
  }
}

// A row kernel's AVX2 instance (its always-inline body compiled for AVX2 + FMA) and the
// run-time choice between it and the baseline one (detail/cpu.hpp).
template <class Args, void (*Impl)(const Args&, std::int64_t, std::int64_t)>
XGRAD_TARGET_AVX2 void rows_avx2(const Args& a, std::int64_t r0, std::int64_t r1) {
  Impl(a, r0, r1);
}
template <class Args, void (*Impl)(const Args&, std::int64_t, std::int64_t)>
void run_rows(const Args& a, std::int64_t r0, std::int64_t r1) {
  if (detail::use_avx2()) return rows_avx2<Args, Impl>(a, r0, r1);
  Impl(a, r0, r1);
}

struct LnBackwardArgs {
  const float* x;
  const float* g;
  const float* w;  // null: 1
  const double* mean;
  const double* invstd;
  float* dx;   // null: not needed
  double* dw;  // this chunk's [M] partials (added to)
  double* db;
  float* xhat;  // [M] scratch
  float* dxhat;
  float* fw;  // [M] float partials of dw, db between flushes
  float* fb;
  std::int64_t M;
};

[[gnu::always_inline]] inline void ln_backward_rows_impl(const LnBackwardArgs& a, std::int64_t r0,
                                                         std::int64_t r1) {
  const std::int64_t M = a.M;
  float* __restrict xhat = a.xhat;
  float* __restrict dxhat = a.dxhat;
  float* __restrict fw = a.fw;
  float* __restrict fb = a.fb;
  for (std::int64_t j = 0; j < M; ++j) fw[j] = fb[j] = 0.0f;
  for (std::int64_t r = r0; r < r1; ++r) {
    const float* __restrict xr = a.x + r * M;
    const float* __restrict gr = a.g + r * M;
    const float mu = static_cast<float>(a.mean[r]), is = static_cast<float>(a.invstd[r]);
    for (std::int64_t j = 0; j < M; ++j) {
      xhat[j] = (xr[j] - mu) * is;
      fw[j] += gr[j] * xhat[j];
      fb[j] += gr[j];
    }
    if ((r - r0) % kFlushRows == kFlushRows - 1 || r + 1 == r1) {
      for (std::int64_t j = 0; j < M; ++j) {
        a.dw[j] += static_cast<double>(fw[j]);
        a.db[j] += static_cast<double>(fb[j]);
        fw[j] = fb[j] = 0.0f;
      }
    }
    if (a.dx == nullptr) continue;
    if (a.w != nullptr) {
      const float* __restrict w = a.w;
      for (std::int64_t j = 0; j < M; ++j) dxhat[j] = gr[j] * w[j];
    } else {
      for (std::int64_t j = 0; j < M; ++j) dxhat[j] = gr[j];
    }
    const float inv_m = 1.0f / static_cast<float>(M);
    const float ma = sum_lanes(M, [&](std::int64_t j) { return dxhat[j]; }) * inv_m;
    const float mb = sum_lanes(M, [&](std::int64_t j) { return dxhat[j] * xhat[j]; }) * inv_m;
    float* __restrict dx = a.dx + r * M;
    for (std::int64_t j = 0; j < M; ++j) dx[j] = is * (dxhat[j] - ma - xhat[j] * mb);
  }
}

// The sum of n values as double, in four interleaved partial sums (the serial chain of one
// sum is a row's whole cost; doubles hold a float row's sum exactly enough either way).
template <class F>
double sum4(std::int64_t n, F f) {
  double s[4] = {0, 0, 0, 0};
  std::int64_t j = 0;
  for (; j + 4 <= n; j += 4)
    for (int u = 0; u < 4; ++u) s[u] += f(j + u);
  for (; j < n; ++j) s[0] += f(j);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

template <class T>
std::vector<double> values_or(const Tensor& t, std::int64_t M, double fallback) {
  std::vector<double> v(static_cast<std::size_t>(M), fallback);
  if (!t.defined()) return v;
  Tensor c = t.detach().contiguous();
  const T* p = c.data_ptr<T>();
  for (std::int64_t i = 0; i < M; ++i) v[static_cast<std::size_t>(i)] = p[i];
  return v;
}

// x̂ = (x − μ)·invstd with ops (differentiable in x), over the trailing axes.
struct Normalized {
  Tensor xhat, invstd;
};
Normalized normalize(const Tensor& x, const Rows& r, double eps) {
  Tensor xc = sub(x, mean(x, r.norm_axes, /*keepdim=*/true));
  Tensor var = mean(mul(xc, xc), r.norm_axes, /*keepdim=*/true);
  Normalized nz;
  nz.invstd = 1.0 / sqrt(var + eps);
  nz.xhat = mul(xc, nz.invstd);
  return nz;
}

// The derivative of x̂ along d (also its vjp: the map is self-adjoint):
// invstd·(d − mean(d) − x̂·mean(d·x̂)), means over the trailing axes.
Tensor xhat_derivative(const Tensor& d, const Normalized& nz, const Rows& r) {
  Tensor centred = sub(d, mean(d, r.norm_axes, /*keepdim=*/true));
  Tensor proj = mul(nz.xhat, mean(mul(d, nz.xhat), r.norm_axes, /*keepdim=*/true));
  return mul(sub(centred, proj), nz.invstd);
}

Tensor sum_rows(const Tensor& t, const Rows& r) {
  return r.row_axes.empty() ? t : sum(t, r.row_axes);
}

struct LayerNormBackward final : Node {
  Saved x, weight;
  std::vector<double> mean, invstd;  // per row, from the forward
  Rows rows;
  double eps = 0;
  std::string_view name() const override { return "layer_norm"; }

  tensor_list apply(tensor_list&& g) override {
    Tensor xv = saved(x);
    Tensor wv = saved(weight);
    tensor_list out(3);
    if (detail::backward_needs_ops()) {
      const Normalized nz = normalize(xv, rows, eps);
      if (needs_input_grad(0))
        out[0] = xhat_derivative(wv.defined() ? mul(g[0], wv) : g[0], nz, rows);
      if (needs_input_grad(1)) out[1] = sum_rows(mul(g[0], nz.xhat), rows);
      if (needs_input_grad(2)) out[2] = sum_rows(g[0], rows);
      return out;
    }
    return dispatch_floating(xv.dtype(), "layer_norm_backward", [&]<class T>() {
      Tensor xc = xv.contiguous();
      Tensor gc = g[0].contiguous();
      const std::int64_t R = rows.R, M = rows.M;
      const std::vector<double> w = values_or<T>(wv, M, 1.0);
      const T* px = xc.data_ptr<T>();
      const T* pg = gc.data_ptr<T>();
      std::vector<double> dw(static_cast<std::size_t>(M), 0.0), db(dw);
      Tensor dx;
      if (needs_input_grad(0)) dx = empty(xc.shape(), dtype_of<T>);
      T* pdx0 = dx.defined() ? dx.data_ptr<T>() : nullptr;
      // Rows in chunks on the batch pool; each chunk's dw, db partials, added in chunk order
      // (the chunks do not depend on the thread count, nor then do the sums).
      const std::int64_t chunks = detail::parallel_chunks(R, kRowGrain);
      std::vector<double> pdw(static_cast<std::size_t>(chunks * M), 0.0), pdb(pdw);
      if constexpr (std::is_same_v<T, float>) {
        Tensor wc = wv.defined() ? wv.detach().contiguous() : Tensor();
        const float* pw = wc.defined() ? wc.template data_ptr<float>() : nullptr;
        detail::parallel_for(R, kRowGrain, [&](std::int64_t r0, std::int64_t r1, std::int64_t c) {
          std::vector<float> scratch(static_cast<std::size_t>(4 * M));
          LnBackwardArgs a{px,
                           pg,
                           pw,
                           mean.data(),
                           invstd.data(),
                           pdx0,
                           pdw.data() + c * M,
                           pdb.data() + c * M,
                           scratch.data(),
                           scratch.data() + M,
                           scratch.data() + 2 * M,
                           scratch.data() + 3 * M,
                           M};
          run_rows<LnBackwardArgs, ln_backward_rows_impl>(a, r0, r1);
        });
      } else {
        detail::parallel_for(R, kRowGrain, [&](std::int64_t r0, std::int64_t r1, std::int64_t c) {
          std::vector<double> xhat(static_cast<std::size_t>(M)), dxhat(xhat);
          double* cdw = pdw.data() + c * M;
          double* cdb = pdb.data() + c * M;
          for (std::int64_t r = r0; r < r1; ++r) {
            const auto k = static_cast<std::size_t>(r);
            for (std::int64_t j = 0; j < M; ++j) {
              const auto i = static_cast<std::size_t>(j);
              const double gv = pg[r * M + j];
              xhat[i] = (static_cast<double>(px[r * M + j]) - mean[k]) * invstd[k];
              dxhat[i] = gv * w[i];
              cdw[j] += gv * xhat[i];
              cdb[j] += gv;
            }
            if (pdx0 == nullptr) continue;
            const double a = sum4(M, [&](std::int64_t j) { return dxhat[std::size_t(j)]; }) /
                             static_cast<double>(M);
            const double b =
                sum4(M,
                     [&](std::int64_t j) { return dxhat[std::size_t(j)] * xhat[std::size_t(j)]; }) /
                static_cast<double>(M);
            T* pdx = pdx0 + r * M;
            for (std::int64_t j = 0; j < M; ++j) {
              const auto i = static_cast<std::size_t>(j);
              pdx[j] = static_cast<T>(invstd[k] * (dxhat[i] - a - xhat[i] * b));
            }
          }
        });
      }
      for (std::int64_t c = 0; c < chunks; ++c)
        for (std::int64_t j = 0; j < M; ++j) {
          dw[static_cast<std::size_t>(j)] += pdw[static_cast<std::size_t>(c * M + j)];
          db[static_cast<std::size_t>(j)] += pdb[static_cast<std::size_t>(c * M + j)];
        }
      out[0] = dx;
      Shape wshape(xc.shape().end() - static_cast<std::ptrdiff_t>(rows.norm_axes.size()),
                   xc.shape().end());
      if (needs_input_grad(1)) out[1] = from_data(dw.data(), wshape).to(dtype_of<T>);
      if (needs_input_grad(2)) out[2] = from_data(db.data(), wshape).to(dtype_of<T>);
      return out;
    });
  }
};

void check_param(const Tensor& t, const Shape& normalized_shape, const Tensor& x,
                 const char* what) {
  if (!t.defined()) return;
  check(t.shape() == normalized_shape, "layer_norm: ", what, " must have shape ", normalized_shape,
        " (normalized_shape), got ", t.shape());
  check(t.dtype() == x.dtype(), "layer_norm: ", what, " is ", dtype_name(t.dtype()),
        " but the input is ", dtype_name(x.dtype()));
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  if (autograd::any_batched(x, weight, bias))  // trailing dimensions are the same physically
    return autograd::vmap_op("layer_norm", {x, weight, bias}, [&](const autograd::BatchedArgs& p) {
      if (!p.batched(1) && !p.batched(2))
        return layer_norm(p[0], normalized_shape, p[1], p[2], eps);
      // Per-sample weight or bias: normalise, then scale and shift with broadcasting ops.
      const std::int64_t r = p.logical_dim(0);
      Tensor y = layer_norm(p.expanded(0), normalized_shape, {}, {}, eps);
      if (p[1].defined()) y = mul(y, p.aligned(1, r));
      if (p[2].defined()) y = add(y, p.aligned(2, r));
      return y;
    });
  check(x.defined(), "layer_norm: undefined input");
  check(is_floating(x.dtype()), "layer_norm: expected a float32 or float64 tensor, got ",
        dtype_name(x.dtype()), " of shape ", x.shape());
  const std::size_t nd = normalized_shape.size();
  bool trailing = nd > 0 && nd <= static_cast<std::size_t>(x.dim());
  for (std::size_t i = 0; trailing && i < nd; ++i)
    trailing = x.shape()[static_cast<std::size_t>(x.dim()) - nd + i] == normalized_shape[i];
  check(trailing, "layer_norm: normalized_shape ", normalized_shape,
        " does not match the last dimensions of input of shape ", x.shape());
  check_param(weight, normalized_shape, x, "weight");
  check_param(bias, normalized_shape, x, "bias");
  check(eps >= 0, "layer_norm: eps must be non-negative, got ", eps);
  const Rows rows = rows_of(x, nd);

  std::vector<double> mean(static_cast<std::size_t>(rows.R)), invstd(mean);
  Tensor out = dispatch_floating(x.dtype(), "layer_norm", [&]<class T>() {
    Tensor xc = x.detach().contiguous();
    const std::vector<double> w = values_or<T>(weight, rows.M, 1.0);
    const std::vector<double> b = values_or<T>(bias, rows.M, 0.0);
    Tensor y = empty(x.shape(), dtype_of<T>);
    const T* px = xc.data_ptr<T>();
    T* py = y.data_ptr<T>();
    const std::int64_t M = rows.M;
    if constexpr (std::is_same_v<T, float>) {
      Tensor wc = weight.defined() ? weight.detach().contiguous() : Tensor();
      Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
      const LnForwardArgs a{px,
                            py,
                            wc.defined() ? wc.template data_ptr<float>() : nullptr,
                            bc.defined() ? bc.template data_ptr<float>() : nullptr,
                            mean.data(),
                            invstd.data(),
                            M,
                            eps};
      detail::parallel_for(rows.R, kRowGrain, [&](std::int64_t r0, std::int64_t r1, std::int64_t) {
        run_rows<LnForwardArgs, ln_forward_rows_impl>(a, r0, r1);
      });
      return y;
    }
    detail::parallel_for(rows.R, kRowGrain, [&](std::int64_t r0, std::int64_t r1, std::int64_t) {
      for (std::int64_t r = r0; r < r1; ++r) {
        const T* row = px + r * M;
        const double mu = sum4(M, [&](std::int64_t j) { return static_cast<double>(row[j]); }) /
                          static_cast<double>(M);
        const double q = sum4(M, [&](std::int64_t j) {
          const double e = static_cast<double>(row[j]) - mu;
          return e * e;
        });
        const double is = 1.0 / std::sqrt(q / static_cast<double>(M) + eps);
        mean[static_cast<std::size_t>(r)] = mu;
        invstd[static_cast<std::size_t>(r)] = is;
        for (std::int64_t j = 0; j < M; ++j) {
          const auto i = static_cast<std::size_t>(j);
          py[r * M + j] = static_cast<T>((static_cast<double>(row[j]) - mu) * is * w[i] + b[i]);
        }
      }
    });
    return y;
  });
  record_op<LayerNormBackward>({&x, &weight, &bias}, {&out}, [&](LayerNormBackward& n) {
    n.x = n.save(x);
    n.weight = n.save(weight);
    n.mean = mean;
    n.invstd = invstd;
    n.rows = rows;
    n.eps = eps;
  });
  jvp_op("layer_norm", {&x, &weight, &bias}, out, [&] {
    const Normalized nz = normalize(x, rows, eps);
    Tensor dy = xhat_derivative(tangent(x), nz, rows);
    if (weight.defined()) dy = add(mul(dy, weight), mul(nz.xhat, tangent(weight)));
    if (bias.defined()) dy = add(dy, tangent(bias));
    return dy;
  });
  return out;
}

}  // namespace xgrad
