#include "xgrad/ops/linalg.hpp"

#include <algorithm>
#include <atomic>
#include <vector>

#include "detail/blas.hpp"
#include "detail/kernel.hpp"
#include "ops/reduction_util.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/ops/shape.hpp"
#include "xgrad/ops/tensor_index.hpp"

namespace xgrad {

using autograd::jvp_op;
using autograd::Node;
using autograd::record_op;
using autograd::Saved;
using autograd::tangent;
using autograd::tensor_list;

namespace {
std::atomic<std::int64_t> g_operand_copies{0};
}  // namespace

namespace detail {
std::int64_t blas_operand_copies() {
  return g_operand_copies.load(std::memory_order_relaxed);
}
}  // namespace detail

namespace {

// A 2-D matrix as BLAS sees it: pointer, transpose flag and leading dimension. Copies only
// when the strides fit neither row-major nor its transpose.
struct BlasMat {
  Tensor keep;  // owns a contiguous copy when one was needed
  bool trans = false;
  std::int64_t ld = 0;
};

BlasMat as_blas(const Tensor& m) {
  const std::int64_t r = m.shape()[0], c = m.shape()[1];
  const std::int64_t s0 = m.strides()[0], s1 = m.strides()[1];
  if ((s1 == 1 || c == 1) && s0 >= std::max<std::int64_t>(c, 1)) return {m, false, s0};
  if ((s0 == 1 || r == 1) && s1 >= std::max<std::int64_t>(r, 1)) return {m, true, s1};
  g_operand_copies.fetch_add(1, std::memory_order_relaxed);
  Tensor cont = m.contiguous();
  return {cont, false, std::max<std::int64_t>(c, 1)};
}

// out[m,n] = beta*out + a[m,k]·b[k,n]; out is contiguous.
template <class T>
void gemm(const Tensor& a, const Tensor& b, Tensor& out, T beta) {
  const std::int64_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  if (m == 0 || n == 0) return;
  if (k == 0) {  // nothing to multiply (and nothing for as_blas to look at)
    if (beta == T(0)) out.zero_();
    return;
  }
  const BlasMat A = as_blas(a), B = as_blas(b);
  detail::gemm<T>(A.trans, B.trans, m, n, k, A.keep.template data_ptr<T>(), A.ld,
                  B.keep.template data_ptr<T>(), B.ld, beta, out.data_ptr<T>(), n);
}

[[noreturn]] void mismatch(const Tensor& a, const Tensor& b) {
  fail("matmul: shapes ", a.shape(), " and ", b.shape(), " cannot be multiplied");
}

// Forward kernel for 2-D and 3-D operands (vectors are reshaped by the caller).
Tensor matmul_kernel(const Tensor& a, const Tensor& b) {
  detail::check_same_dtype(a, b, "matmul");
  return dispatch_floating(a.dtype(), "matmul", [&]<class T>() {
    if (a.dim() == 2 && b.dim() == 2) {
      if (a.shape()[1] != b.shape()[0]) mismatch(a, b);
      Tensor out = empty({a.shape()[0], b.shape()[1]}, a.dtype());
      gemm<T>(a, b, out, T(0));
      return out;
    }
    if (a.dim() == 3 && b.dim() == 2 && a.is_contiguous()) {
      // [B,m,k]·[k,n]: one GEMM over B*m rows when a is contiguous; otherwise the per-batch
      // loop below hands each strided a[i] to BLAS as it is (transpose flag), without a copy.
      if (a.shape()[2] != b.shape()[0]) mismatch(a, b);
      Tensor a2 = a.reshape({a.shape()[0] * a.shape()[1], a.shape()[2]});
      Tensor out = empty({a2.shape()[0], b.shape()[1]}, a.dtype());
      gemm<T>(a2, b, out, T(0));
      return out.reshape({a.shape()[0], a.shape()[1], b.shape()[1]});
    }
    if (a.dim() == 3 && b.dim() == 3 && b.strides()[0] == 0 && a.is_contiguous() &&
        a.shape()[0] == b.shape()[0]) {
      // The same matrix for every batch entry (a shared weight expanded by vmap): one GEMM.
      if (a.shape()[2] != b.shape()[1]) mismatch(a, b);
      Tensor b2 = b.select(0, 0);
      Tensor a2 = a.reshape({a.shape()[0] * a.shape()[1], a.shape()[2]});
      Tensor out = empty({a2.shape()[0], b.shape()[2]}, a.dtype());
      gemm<T>(a2, b2, out, T(0));
      return out.reshape({a.shape()[0], a.shape()[1], b.shape()[2]});
    }
    const std::int64_t batch = a.dim() == 3 ? a.shape()[0] : b.shape()[0];
    if (a.dim() == 3 && b.dim() == 3 && a.shape()[0] != b.shape()[0]) mismatch(a, b);
    const std::int64_t m = a.shape()[a.dim() - 2], k = a.shape()[a.dim() - 1];
    const std::int64_t k2 = b.shape()[b.dim() - 2], n = b.shape()[b.dim() - 1];
    if (k != k2) mismatch(a, b);
    Tensor out = empty({batch, m, n}, a.dtype());
    if (k == 1 && b.strides()[b.dim() - 1] == 1) {
      // A batch of outer products (per-sample weight gradients under vmap): one parallel loop.
      detail::outer<T>(batch, m, n, a.data_ptr<T>(), a.dim() == 3 ? a.strides()[0] : 0,
                       a.strides()[a.dim() - 2], b.data_ptr<T>(), b.dim() == 3 ? b.strides()[0] : 0,
                       out.data_ptr<T>(), n);
      return out;
    }
    for (std::int64_t i = 0; i < batch; ++i) {
      Tensor ai = a.dim() == 3 ? squeeze(slice(a, 0, i, i + 1), 0) : a;
      Tensor bi = b.dim() == 3 ? squeeze(slice(b, 0, i, i + 1), 0) : b;
      Tensor oi = squeeze(slice(out, 0, i, i + 1), 0);
      gemm<T>(ai, bi, oi, T(0));
    }
    return out;
  });
}

// The vjp is written with matmul itself (and transpose/sum/reshape), so with create_graph it
// is recorded and differentiable again; without, it runs the same GEMMs as before.
struct MatmulBackward final : Node {
  Saved a, b;
  std::string_view name() const override { return "matmul"; }
  tensor_list apply(tensor_list&& g) override {
    Tensor av = saved(a), bv = saved(b);
    tensor_list out(2);
    // dA = g·bᵀ, dB = aᵀ·g; a 2-D operand broadcast over a batch sums its gradient.
    if (needs_input_grad(0)) {
      Tensor ga = matmul(g[0], transpose(bv, -1, -2));
      out[0] = ga.dim() > av.dim() ? sum(ga, 0) : ga;
    }
    if (needs_input_grad(1)) {
      Tensor gb;
      if (av.dim() == 3 && bv.dim() == 2 && av.is_contiguous()) {
        // Σ_B a[B]ᵀ·g[B] = (a as [B*m,k])ᵀ · (g as [B*m,n]).
        const Shape& gs = g[0].shape();
        Tensor a2 = av.reshape({av.shape()[0] * av.shape()[1], av.shape()[2]});
        Tensor g2 = g[0].reshape({gs[0] * gs[1], gs[2]});
        gb = matmul(a2.t(), g2);
      } else {
        gb = matmul(transpose(av, -1, -2), g[0]);
        if (gb.dim() > bv.dim()) gb = sum(gb, 0);
      }
      out[1] = gb;
    }
    return out;
  }
};

// db = Σ_rows g for a contiguous float32 g [n, o], as sum(g, 0) gives it (float64
// accumulation) but faster: each block of kFlushRows rows is added in float into one partial
// row, which is then added into the float64 sums; the loops are dispatched (AVX2 variant).
constexpr std::int64_t kFlushRows = 16;

[[gnu::always_inline]] inline void column_sums_impl(const float* g, std::int64_t n, std::int64_t o,
                                                    double* acc, float* part) {
  for (std::int64_t r0 = 0; r0 < n; r0 += kFlushRows) {
    const std::int64_t r1 = std::min(n, r0 + kFlushRows);
    for (std::int64_t j = 0; j < o; ++j) part[j] = 0.0f;
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* __restrict row = g + r * o;
      float* __restrict p = part;
      for (std::int64_t j = 0; j < o; ++j) p[j] += row[j];
    }
    for (std::int64_t j = 0; j < o; ++j) acc[j] += static_cast<double>(part[j]);
  }
}
XGRAD_TARGET_AVX2 void column_sums_avx2(const float* g, std::int64_t n, std::int64_t o, double* acc,
                                        float* part) {
  column_sums_impl(g, n, o, acc, part);
}

Tensor bias_grad(const Tensor& gy) {
  const std::int64_t n = gy.shape()[0], o = gy.shape()[1];
  // Per-thread scratch reused from call to call: a training step allocates nothing.
  thread_local std::vector<double> acc;
  thread_local std::vector<float> part;
  acc.assign(static_cast<std::size_t>(o), 0.0);
  part.resize(static_cast<std::size_t>(o));
  if (detail::use_avx2())
    column_sums_avx2(gy.data_ptr<float>(), n, o, acc.data(), part.data());
  else
    column_sums_impl(gy.data_ptr<float>(), n, o, acc.data(), part.data());
  Tensor out = empty({o}, float32);
  float* po = out.data_ptr<float>();
  for (std::int64_t j = 0; j < o; ++j) po[j] = static_cast<float>(acc[static_cast<std::size_t>(j)]);
  return out;
}

// y = x·wᵀ + b: dx = g·w, dw = gᵀ·x, db = Σ_rows g — matmul and sum, differentiable again
// (a first-order backward sums db with bias_grad's raw kernel).
struct LinearBackward final : Node {
  Saved x, w;
  std::string_view name() const override { return "linear"; }
  tensor_list apply(tensor_list&& g) override {
    tensor_list out(3);
    Tensor gy = g[0];
    if (needs_input_grad(0)) out[0] = matmul(gy, saved(w));
    if (needs_input_grad(1)) out[1] = matmul(gy.t(), saved(x));
    if (needs_input_grad(2)) {
      if (!detail::backward_needs_ops() && gy.dtype() == float32 && gy.is_contiguous() &&
          gy.dim() == 2 && !autograd::any_batched(gy))
        out[2] = bias_grad(gy);
      else
        out[2] = sum(gy, 0);
    }
    return out;
  }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("matmul", {a, b}, [&](const autograd::BatchedArgs& p) -> Tensor {
      const std::int64_t ra = a.dim(), rb = b.dim();
      const Tensor &x = p[0], &y = p[1];
      if (p.batched(0) && p.batched(1)) {
        if (ra == 2 && rb == 2) return matmul(x, y);
        if (ra == 1 && rb == 2) return squeeze(matmul(unsqueeze(x, 1), y), 1);
        if (ra == 2 && rb == 1) return squeeze(matmul(x, unsqueeze(y, 2)), 2);
        if (ra == 1 && rb == 1) return sum(mul(x, y), 1);  // a dot product per sample
      } else if (p.batched(0)) {  // b is shared: fold the samples' rows into one GEMM
        if (ra == 1) return matmul(x, y);
        if (rb <= 2) {
          Shape s = x.shape();
          Tensor r = matmul(reshape(x, {-1, s.back()}), y);
          s.pop_back();
          if (rb == 2) s.push_back(y.shape()[1]);
          return reshape(r, s);
        }
      } else {  // a is shared, b batched: [B,k,n] or [B,k]
        if (rb == 2 && ra <= 2)
          return ra == 1 ? squeeze(matmul(unsqueeze(x, 0), y), 1) : matmul(x, y);
        if (rb == 1 && ra <= 2) return ra == 1 ? matmul(y, x) : matmul(y, x.t());
      }
      // Any other mix of ranks: one product per sample.
      std::vector<Tensor> outs;
      for (std::int64_t i = 0; i < p.batch_size(); ++i)
        outs.push_back(
            matmul(p.batched(0) ? select(x, 0, i) : x, p.batched(1) ? select(y, 0, i) : y));
      return stack(outs, 0);
    });
  if (a.dim() == 0 || b.dim() == 0 || a.dim() > 3 || b.dim() > 3) mismatch(a, b);
  // Vectors: lift to matrices, multiply, drop the added axes again (all differentiable).
  if (a.dim() == 1 || b.dim() == 1) {
    Tensor a2 = a.dim() == 1 ? unsqueeze(a, 0) : a;
    Tensor b2 = b.dim() == 1 ? unsqueeze(b, -1) : b;
    if (a2.shape().back() != b2.shape()[b2.dim() - 2]) mismatch(a, b);
    Tensor r = matmul(a2, b2);
    if (b.dim() == 1) r = squeeze(r, -1);
    if (a.dim() == 1) r = squeeze(r, a2.dim() == 2 && b.dim() == 1 ? 0 : -2);
    return r;
  }
  Tensor out;
  {
    no_grad guard;
    out = matmul_kernel(a.detach(), b.detach());
  }
  record_op<MatmulBackward>({&a, &b}, {&out}, [&](MatmulBackward& n) {
    n.a = n.save(a);
    n.b = n.save(b);
  });
  // d(a·b) = da·b + a·db (product rule; both terms are matmuls, broadcast as the forward).
  jvp_op("matmul", {&a, &b}, out, [&] {
    const bool ta = autograd::has_tangent(a), tb = autograd::has_tangent(b);
    if (ta && tb) return add(matmul(tangent(a), b), matmul(a, tangent(b)));
    return ta ? matmul(tangent(a), b) : matmul(a, tangent(b));
  });
  return out;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  if (autograd::any_batched(x, w, b))
    return autograd::vmap_op("linear", {x, w, b}, [&](const autograd::BatchedArgs& p) -> Tensor {
      if (x.dim() < 1 || w.dim() != 2 || x.shape().back() != w.shape()[1])
        fail("linear: input ", x.shape(), " does not match weight ", w.shape());
      if (!p.batched(1) && !p.batched(2)) return linear(p.expanded(0), p[1], p[2]);
      // Weights per sample (a parameter under vmap(grad(f)), or a mapped weight): a batched
      // product [B, rows, in]·[B, in, out].
      const Tensor xe = p.expanded(0);
      Shape s = xe.shape();
      Tensor y = matmul(reshape(xe, {s[0], -1, s.back()}), transpose(p.expanded(1), 1, 2));
      if (p[2].defined()) y = add(y, unsqueeze(p.expanded(2), 1));
      s.back() = w.shape()[0];
      return reshape(y, s);
    });
  // Checked on the caller's shapes, before any flattening, so the message shows them.
  if (x.dim() < 1 || w.dim() != 2 || x.shape().back() != w.shape()[1])
    fail("linear: input ", x.shape(), " does not match weight ", w.shape(), " (expected input [",
         x.dim() == 2 ? "N," : "...,", w.dim() == 2 ? w.shape()[1] : -1, "])");
  if (x.dim() != 2) {
    // [..., in] -> [rows, in] -> [rows, out] -> [..., out]; a 1-D x is a single row.
    std::int64_t rows = 1;
    for (std::int64_t i = 0; i + 1 < x.dim(); ++i) rows *= x.shape()[static_cast<std::size_t>(i)];
    Tensor y = linear(reshape(x, {rows, x.shape().back()}), w, b);
    Shape s = x.shape();
    s.back() = w.shape()[0];
    return reshape(y, s);
  }
  detail::check_same_dtype(x, w, "linear");
  if (b.defined()) {
    detail::check_same_dtype(x, b, "linear");
    if (b.dim() != 1 || b.shape()[0] != w.shape()[0])
      fail("linear: bias ", b.shape(), " does not match weight ", w.shape());
  }
  const std::int64_t n = x.shape()[0], o = w.shape()[0];
  Tensor out = empty({n, o}, x.dtype());
  {
    no_grad guard;
    dispatch_floating(x.dtype(), "linear", [&]<class T>() {
      T beta = T(0);
      if (b.defined()) {
        Tensor bc = b.detach().contiguous();
        const T* pb = bc.data_ptr<T>();
        T* po = out.data_ptr<T>();
        for (std::int64_t i = 0; i < n; ++i) std::copy_n(pb, o, po + i * o);
        beta = T(1);
      }
      gemm<T>(x.detach(), w.detach().t(), out, beta);
    });
  }
  record_op<LinearBackward>({&x, &w, &b}, {&out}, [&](LinearBackward& n) {
    // dx needs w and dw needs x: save only what a needed gradient reads.
    if (n.needs_input_grad(1)) n.x = n.save(x);
    if (n.needs_input_grad(0)) n.w = n.save(w);
  });
  // d(x·wᵀ + b) = dx·wᵀ + x·dwᵀ + db: linear's own fused kernel for each product, the bias
  // tangent added by the first of them (or broadcast alone when only b has a tangent).
  jvp_op("linear", {&x, &w, &b}, out, [&] {
    Tensor tb = autograd::tangent_or_undefined(b);
    Tensor r;
    if (autograd::has_tangent(x)) {
      r = linear(tangent(x), w, tb);
      tb = Tensor();
    }
    if (autograd::has_tangent(w)) {
      Tensor rw = linear(x, tangent(w), tb);
      tb = Tensor();
      r = r.defined() ? add(r, rw) : rw;
    }
    if (tb.defined()) r = expand(tb, out.shape());
    return r;
  });
  return out;
}

}  // namespace xgrad
