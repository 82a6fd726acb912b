// scaled_dot_product_attention: the fused op (kernels in attention_kernels.cpp) with its node,
// whose backward is the fused kernel at first order and the same vjp written with xgrad ops
// when the backward is recorded; its jvp; and the plain composition it is tested against.
#include "xgrad/ops/attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "detail/kernel.hpp"
#include "ops/attention_kernels.hpp"
#include "ops/reduction_util.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/dropout.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/linalg.hpp"
#include "xgrad/ops/masking.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/ops/shape.hpp"
#include "xgrad/random.hpp"

namespace xgrad {

using autograd::jvp_op;
using autograd::Node;
using autograd::record_op;
using autograd::Saved;
using autograd::tangent;
using autograd::tensor_list;

namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

struct Geometry {
  Shape batch;  // the leading dimensions
  std::int64_t B = 1, L = 0, S = 0, E = 0, Ev = 0;
  double scale = 1.0;
  Shape scores_shape() const {  // [..., L, S]
    Shape s = batch;
    s.push_back(L);
    s.push_back(S);
    return s;
  }
};

bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const std::size_t off = to.size() - from.size();
  for (std::size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[off + i]) return false;
  return true;
}

Geometry check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                      double dropout_p, bool is_causal, std::optional<double> scale,
                      const char* op) {
  check(q.defined() && k.defined() && v.defined(), op, ": undefined query, key or value");
  check(is_floating(q.dtype()), op, ": expected float32 or float64 query, key and value, got ",
        dtype_name(q.dtype()));
  check(k.dtype() == q.dtype() && v.dtype() == q.dtype(), op, ": query, key and value must have ",
        "one dtype, got ", dtype_name(q.dtype()), ", ", dtype_name(k.dtype()), " and ",
        dtype_name(v.dtype()));
  check(q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(), op,
        ": expected query [..., L, E], key [..., S, E] and value [..., S, Ev] of one rank >= 2, "
        "got ",
        q.shape(), ", ", k.shape(), " and ", v.shape());
  Geometry g;
  const auto nd = static_cast<std::size_t>(q.dim());
  g.batch.assign(q.shape().begin(), q.shape().end() - 2);
  for (auto d : g.batch) g.B *= d;
  g.L = q.shape()[nd - 2];
  g.E = q.shape()[nd - 1];
  g.S = k.shape()[nd - 2];
  g.Ev = v.shape()[nd - 1];
  const bool same_batch = Shape(k.shape().begin(), k.shape().end() - 2) == g.batch &&
                          Shape(v.shape().begin(), v.shape().end() - 2) == g.batch;
  check(same_batch && k.shape()[nd - 1] == g.E && v.shape()[nd - 2] == g.S, op, ": shapes query ",
        q.shape(), ", key ", k.shape(), " and value ", v.shape(),
        " do not fit [..., L, E], [..., S, E], [..., S, Ev]");
  if (mask.defined()) {
    check(!is_causal, op, ": an explicit attn_mask cannot be combined with is_causal = true");
    check(mask.dtype() == Dtype::boolean || mask.dtype() == q.dtype(), op,
          ": attn_mask must be bool or the query's dtype ", dtype_name(q.dtype()), ", got ",
          dtype_name(mask.dtype()));
    check(broadcasts_to(mask.shape(), g.scores_shape()), op, ": attn_mask of shape ", mask.shape(),
          " does not broadcast to ", g.scores_shape());
  }
  check(dropout_p >= 0.0 && dropout_p < 1.0, op, ": dropout_p must be in [0, 1), got ", dropout_p);
  g.scale = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(g.E));
  check(std::isfinite(g.scale), op, ": scale must be finite, got ", g.scale);
  return g;
}

// [..., n, m] as [B, n, m] (a differentiable reshape; matmul takes at most 3 dimensions).
Tensor as3(const Tensor& t, const Geometry& g) {
  return reshape(t, {g.B, t.shape()[static_cast<std::size_t>(t.dim() - 2)], t.shape().back()});
}
// [B, n, m] back to [..., n, m].
Tensor unflatten(const Tensor& t, const Geometry& g) {
  Shape s = g.batch;
  s.push_back(t.shape()[1]);
  s.push_back(t.shape()[2]);
  return reshape(t, s);
}

Tensor bool_not(const Tensor& m) {
  Tensor mc = m.contiguous();
  Tensor out = empty(m.shape(), Dtype::boolean);
  const bool* pi = mc.data_ptr<bool>();
  bool* po = out.data_ptr<bool>();
  for (std::int64_t i = 0, n = m.numel(); i < n; ++i) po[i] = !pi[i];
  return out;
}

// The masked, scaled scores [B, L, S] with ops: scale·q·kᵀ, + a float mask (its gradient then
// flows), −inf where a bool mask is false or above the causal diagonal.
Tensor scores_with_ops(const Tensor& q3, const Tensor& k3, const Tensor& mask, bool causal,
                       const Geometry& g) {
  Tensor s = matmul(q3, transpose(k3, 1, 2)) * g.scale;
  constexpr double ninf = -std::numeric_limits<double>::infinity();
  if (mask.defined()) {
    if (mask.dtype() == Dtype::boolean) {
      Tensor drop = bool_not(expand(mask, g.scores_shape()).contiguous());
      s = masked_fill(s, reshape(drop, {g.B, g.L, g.S}), ninf);
    } else {
      s = add(s, reshape(expand(mask, g.scores_shape()), {g.B, g.L, g.S}));
    }
  }
  if (causal) s = masked_fill(s, triu(ones({g.L, g.S}, Dtype::boolean), 1), ninf);
  return s;
}

// The dropout keep-mask as [B, L, S].
Tensor keep_mask3(const Geometry& g, double p, std::uint64_t seed) {
  return reshape(attention_dropout_mask(g.batch, g.L, g.S, p, seed), {g.B, g.L, g.S});
}

// The softmax weights with ops; rows with no kept key (dead, [B, L, 1], from the fused
// forward's lse) are 0 instead of NaN.
Tensor weights_with_ops(const Tensor& s, const Tensor& dead) {
  if (!dead.defined()) return softmax(s, -1);
  return masked_fill(softmax(masked_fill(s, dead, 0.0), -1), dead, 0.0);
}

// Rows whose lse is −inf, as bool [B, L, 1]; undefined when there are none.
Tensor dead_rows(const Tensor& lse, const Geometry& g) {
  Tensor lc = lse.detach().to(Dtype::float64).contiguous();
  const double* p = lc.data_ptr<double>();
  Tensor dead = empty({g.B, g.L, 1}, Dtype::boolean);
  bool* pd = dead.data_ptr<bool>();
  bool any = false;
  for (std::int64_t i = 0; i < g.B * g.L; ++i) any |= (pd[i] = std::isinf(p[i]) && p[i] < 0);
  return any ? dead : Tensor{};
}

// The broadcast layout of a mask in the kernels' problem (per-batch offsets, row and column
// strides), from its contiguous copy.
void describe_mask(detail::AttentionProblem& p, const Tensor& mc, const Geometry& g) {
  const Shape full = g.scores_shape();
  const std::size_t nd = full.size(), off = nd - static_cast<std::size_t>(mc.dim());
  Shape st(nd, 0);
  std::int64_t stride = 1;
  for (std::size_t i = nd; i-- > off;) {
    const std::int64_t size = mc.shape()[i - off];
    st[i] = size == 1 ? 0 : stride;
    stride *= size;
  }
  p.mask_si = st[nd - 2];
  p.mask_sj = st[nd - 1];
  p.mask_offset.assign(static_cast<std::size_t>(g.B), 0);
  for (std::int64_t b = 0; b < g.B; ++b) {
    std::int64_t rem = b, o = 0;
    for (std::size_t d = nd - 2; d-- > 0;) {
      o += (rem % full[d]) * st[d];
      rem /= full[d];
    }
    p.mask_offset[static_cast<std::size_t>(b)] = o;
  }
  p.mask = mc.dtype() == Dtype::boolean
               ? static_cast<const void*>(mc.data_ptr<bool>())
               : (mc.dtype() == Dtype::float32 ? static_cast<const void*>(mc.data_ptr<float>())
                                               : static_cast<const void*>(mc.data_ptr<double>()));
  p.mask_is_bool = mc.dtype() == Dtype::boolean;
}

detail::AttentionProblem problem_of(const Geometry& g, const Tensor& mask_contiguous,
                                    double dropout_p, bool causal, std::uint64_t seed) {
  detail::AttentionProblem p;
  p.B = g.B;
  p.L = g.L;
  p.S = g.S;
  p.E = g.E;
  p.Ev = g.Ev;
  p.scale = g.scale;
  p.causal = causal;
  p.dropout_p = dropout_p;
  p.seed = seed;
  if (mask_contiguous.defined()) describe_mask(p, mask_contiguous, g);
  return p;
}

// Whether the kernels can use t [..., n, m] where it lies: adjacent columns, rows at least m
// apart (a MatrixLayout); the leading dimensions may have any strides.
bool kernel_readable(const Tensor& t) {
  const auto nd = static_cast<std::size_t>(t.dim());
  const std::int64_t n = t.shape()[nd - 2], m = t.shape()[nd - 1];
  return (m <= 1 || t.strides()[nd - 1] == 1) &&
         (n <= 1 || t.strides()[nd - 2] >= std::max<std::int64_t>(m, 1));
}

// t detached, copied to contiguous memory only when the kernels cannot read it in place.
Tensor operand(const Tensor& t) {
  Tensor d = t.detach();
  return kernel_readable(d) ? d : d.contiguous();
}

// The MatrixLayout of a kernel-readable t [..., n, m] over the B flattened leading entries.
detail::MatrixLayout layout_of(const Tensor& t, const Geometry& g) {
  const auto nd = static_cast<std::size_t>(t.dim());
  detail::MatrixLayout l;
  const std::int64_t n = t.shape()[nd - 2], m = std::max<std::int64_t>(t.shape()[nd - 1], 1);
  l.ld = n <= 1 ? m : t.strides()[nd - 2];
  l.offset.assign(static_cast<std::size_t>(g.B), 0);
  for (std::int64_t b = 0; b < g.B; ++b) {
    std::int64_t rem = b, o = 0;
    for (std::size_t d = nd - 2; d-- > 0;) {
      o += (rem % t.shape()[d]) * t.strides()[d];
      rem /= t.shape()[d];
    }
    l.offset[static_cast<std::size_t>(b)] = o;
  }
  return l;
}

// An uninitialised [..., n, m] tensor (shape) whose leading dimensions and rows lie in memory in
// the order of like's strides (largest first), densely, its rows after them and its columns
// adjacent: q's order for out and dq, k's for dk, v's for dv. For multi-head attention's
// q [B, H, L, D] (a view of [B, L, H, D]) this is [B, L, H, D] memory, so the permute and
// reshape back to [B, L, H·D] are views (torch's empty_like keeps strides the same way).
Tensor empty_in_order_of(const Shape& shape, const Tensor& like) {
  const std::size_t nd = shape.size();
  std::vector<std::size_t> order(nd - 1);
  for (std::size_t i = 0; i < nd - 1; ++i) order[i] = i;
  auto key = [&](std::size_t i) { return like.shape()[i] == 1 ? 0 : like.strides()[i]; };
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return key(a) > key(b); });
  bool identity = true;
  for (std::size_t i = 0; i < nd - 1; ++i) identity = identity && order[i] == i;
  if (identity) return empty(shape, like.dtype());
  Shape dense(nd);
  for (std::size_t i = 0; i < nd - 1; ++i) dense[i] = shape[order[i]];
  dense[nd - 1] = shape[nd - 1];
  const Shape cs = contiguous_strides(dense);
  Shape strides(nd);
  for (std::size_t i = 0; i < nd - 1; ++i) strides[order[i]] = cs[i];
  strides[nd - 1] = 1;
  const Tensor base = empty(dense, like.dtype());
  return Tensor(std::make_shared<TensorImpl>(base.storage(), shape, strides, 0, like.dtype()));
}

std::uint64_t draw_seed(double dropout_p) {
  return dropout_p > 0 ? default_generator()() : 0;
}

// The vjp with ops (create_graph, forward-over-reverse): the weights are recomputed from q
// and k, so the result is differentiable in q, k, v, the mask and the incoming gradient.
tensor_list attention_vjp_with_ops(const Tensor& grad, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const Tensor& mask, const Tensor& lse,
                                   double dropout_p, bool causal, std::uint64_t seed,
                                   const Geometry& g, std::array<bool, 4> needs) {
  Tensor q3 = as3(q, g), k3 = as3(k, g), v3 = as3(v, g), g3 = as3(grad, g);
  Tensor P = weights_with_ops(scores_with_ops(q3, k3, mask, causal, g), dead_rows(lse, g));
  Tensor keep = dropout_p > 0 ? keep_mask3(g, dropout_p, seed) : Tensor{};
  Tensor Pd = keep.defined() ? dropout_with_mask(P, keep, dropout_p) : P;
  tensor_list out(4);
  if (needs[2]) out[2] = unflatten(matmul(transpose(Pd, 1, 2), g3), g);
  if (!(needs[0] || needs[1] || needs[3])) return out;
  Tensor dP = matmul(g3, transpose(v3, 1, 2));
  if (keep.defined()) dP = dropout_with_mask(dP, keep, dropout_p);
  Tensor dS = mul(P, sub(dP, sum(mul(P, dP), -1, /*keepdim=*/true)));
  if (needs[0]) out[0] = unflatten(matmul(dS, k3) * g.scale, g);
  if (needs[1]) out[1] = unflatten(matmul(transpose(dS, 1, 2), q3) * g.scale, g);
  if (needs[3]) out[3] = sum_to(unflatten(dS, g), mask.shape());
  return out;
}

struct AttentionBackward final : Node {
  Saved q, k, v, mask, out, lse;
  Geometry g;
  double dropout_p = 0;
  bool causal = false;
  std::uint64_t seed = 0;
  std::string_view name() const override { return kOp; }

  tensor_list apply(tensor_list&& grads) override {
    Tensor qv = saved(q), kv = saved(k), vv = saved(v), mv = saved(mask), lv = saved(lse);
    const std::array<bool, 4> needs{needs_input_grad(0), needs_input_grad(1), needs_input_grad(2),
                                    needs_input_grad(3)};
    if (detail::backward_needs_ops())
      return attention_vjp_with_ops(grads[0], qv, kv, vv, mv, lv, dropout_p, causal, seed, g,
                                    needs);
    AttentionGradients r = scaled_dot_product_attention_backward(
        grads[0], qv, kv, vv, saved(out), lv, mv, dropout_p, causal, g.scale, seed, needs[3]);
    return {needs[0] ? r.grad_q : Tensor{}, needs[1] ? r.grad_k : Tensor{},
            needs[2] ? r.grad_v : Tensor{}, r.grad_mask};
  }
};

}  // namespace

AttentionForward scaled_dot_product_attention_forward(const Tensor& q, const Tensor& k,
                                                      const Tensor& v, const Tensor& attn_mask,
                                                      double dropout_p, bool is_causal,
                                                      double scale, std::uint64_t seed) {
  const Geometry g = check_inputs(q, k, v, attn_mask, dropout_p, is_causal, scale, kOp);
  const Tensor qc = operand(q), kc = operand(k), vc = operand(v);
  Tensor mc = attn_mask.defined() ? attn_mask.detach().contiguous() : Tensor{};
  detail::AttentionProblem p = problem_of(g, mc, dropout_p, is_causal, seed);
  Shape out_shape = g.batch, lse_shape = g.batch;
  out_shape.push_back(g.L);
  out_shape.push_back(g.Ev);
  lse_shape.push_back(g.L);
  AttentionForward r{empty_in_order_of(out_shape, qc), empty(lse_shape, q.dtype())};
  p.q = layout_of(qc, g);
  p.k = layout_of(kc, g);
  p.v = layout_of(vc, g);
  p.out = layout_of(r.output, g);
  dispatch_floating(q.dtype(), kOp, [&]<class T>() {
    detail::attention_forward_kernel<T>(p, qc.data_ptr<T>(), kc.data_ptr<T>(), vc.data_ptr<T>(),
                                        r.output.data_ptr<T>(), r.logsumexp.data_ptr<T>());
  });
  return r;
}

namespace {

// The fused backward into r.grad_q, r.grad_k, r.grad_v when they are defined (kernel-writable
// [..., n, m] views: rows apart, columns adjacent), else into new tensors in q's, k's, v's order.
AttentionGradients backward_into(AttentionGradients r, const Tensor& grad_out, const Tensor& q,
                                 const Tensor& k, const Tensor& v, const Tensor& output,
                                 const Tensor& logsumexp, const Tensor& attn_mask, double dropout_p,
                                 bool is_causal, double scale, std::uint64_t seed,
                                 bool want_mask_grad) {
  const char* op = "scaled_dot_product_attention_backward";
  const Geometry g = check_inputs(q, k, v, attn_mask, dropout_p, is_causal, scale, op);
  Shape out_shape = g.batch, lse_shape = g.batch;
  out_shape.push_back(g.L);
  out_shape.push_back(g.Ev);
  lse_shape.push_back(g.L);
  check(grad_out.defined() && grad_out.shape() == out_shape && output.shape() == out_shape, op,
        ": grad_out and output must have shape ", out_shape);
  check(logsumexp.shape() == lse_shape, op, ": logsumexp must have shape ", lse_shape, ", got ",
        logsumexp.shape());
  check(grad_out.dtype() == q.dtype() && output.dtype() == q.dtype() &&
            logsumexp.dtype() == q.dtype(),
        op, ": grad_out, output and logsumexp must have the query's dtype");
  no_grad guard;
  const Tensor qc = operand(q), kc = operand(k), vc = operand(v), oc = operand(output);
  const Tensor lc = logsumexp.detach().contiguous(), gc = operand(grad_out);
  Tensor mc = attn_mask.defined() ? attn_mask.detach().contiguous() : Tensor{};
  detail::AttentionProblem p = problem_of(g, mc, dropout_p, is_causal, seed);
  const bool mask_grad = want_mask_grad && attn_mask.defined() && is_floating(attn_mask.dtype());
  if (!r.grad_q.defined()) r.grad_q = empty_in_order_of(q.shape(), qc);
  if (!r.grad_k.defined()) r.grad_k = empty_in_order_of(k.shape(), kc);
  if (!r.grad_v.defined()) r.grad_v = empty_in_order_of(v.shape(), vc);
  r.grad_mask = Tensor{};
  p.q = layout_of(qc, g);
  p.k = layout_of(kc, g);
  p.v = layout_of(vc, g);
  p.out = layout_of(oc, g);
  p.dout = layout_of(gc, g);
  p.dq = layout_of(r.grad_q, g);
  p.dk = layout_of(r.grad_k, g);
  p.dv = layout_of(r.grad_v, g);
  Tensor dmask = mask_grad ? empty(g.scores_shape(), q.dtype()) : Tensor{};
  dispatch_floating(q.dtype(), op, [&]<class T>() {
    detail::attention_backward_kernel<T>(
        p, qc.data_ptr<T>(), kc.data_ptr<T>(), vc.data_ptr<T>(), oc.data_ptr<T>(), lc.data_ptr<T>(),
        gc.data_ptr<T>(), r.grad_q.data_ptr<T>(), r.grad_k.data_ptr<T>(), r.grad_v.data_ptr<T>(),
        mask_grad ? dmask.data_ptr<T>() : nullptr);
  });
  if (mask_grad) r.grad_mask = sum_to(dmask, attn_mask.shape());
  return r;
}

// q, k, v of a packed projection qkv [B, L, 3·H·D] as [B, H, L, D] views of its memory (no
// copy, no history): part 0, 1, 2 of each row, heads interleaved in it.
Tensor packed_part(const Tensor& qkv, std::int64_t part, std::int64_t H) {
  const std::int64_t B = qkv.size(0), L = qkv.size(1), E3 = qkv.size(2), D = E3 / (3 * H);
  const std::int64_t sb = qkv.strides()[0], sl = qkv.strides()[1];
  return Tensor(std::make_shared<TensorImpl>(qkv.storage(), Shape{B, H, L, D}, Shape{sb, D, sl, 1},
                                             qkv.offset() + part * H * D, qkv.dtype()));
}

// The same with ops (differentiable in qkv): slice, reshape, permute.
Tensor packed_part_with_ops(const Tensor& qkv, std::int64_t part, std::int64_t H) {
  const std::int64_t B = qkv.size(0), L = qkv.size(1), E = qkv.size(2) / 3;
  return permute(reshape(slice(qkv, 2, part * E, (part + 1) * E), {B, L, H, E / H}), {0, 2, 1, 3});
}

// [B, H, L, D] -> [B, L, H·D] (the heads side by side), with ops.
Tensor merge_heads(const Tensor& t) {
  return reshape(permute(t, {0, 2, 1, 3}), {t.size(0), t.size(2), t.size(1) * t.size(3)});
}

constexpr const char* kPackedOp = "scaled_dot_product_attention_packed";

struct PackedAttentionBackward final : Node {
  Saved qkv, mask, out, lse;
  std::int64_t heads = 1;
  double dropout_p = 0, scale = 1;
  bool causal = false;
  std::uint64_t seed = 0;
  std::string_view name() const override { return kPackedOp; }

  tensor_list apply(tensor_list&& grads) override {
    const Tensor x = saved(qkv), mv = saved(mask), lv = saved(lse), ov = saved(out);
    const std::int64_t B = x.size(0), L = x.size(1), E = x.size(2) / 3, D = E / heads;
    // The output's gradient [B, L, E] as [B, H, L, D].
    auto split_heads = [&](const Tensor& t) {
      return permute(reshape(t, {B, L, heads, D}), {0, 2, 1, 3});
    };
    if (detail::backward_needs_ops()) {
      const Tensor q = packed_part_with_ops(x, 0, heads), k = packed_part_with_ops(x, 1, heads),
                   v = packed_part_with_ops(x, 2, heads);
      Geometry g;
      g.batch = {B, heads};
      g.B = B * heads;
      g.L = g.S = L;
      g.E = g.Ev = D;
      g.scale = scale;
      tensor_list r = attention_vjp_with_ops(split_heads(grads[0]), q, k, v, mv, lv, dropout_p,
                                             causal, seed, g, {true, true, true, false});
      return {concat({merge_heads(r[0]), merge_heads(r[1]), merge_heads(r[2])}, 2)};
    }
    // dq, dk, dv written by the kernel straight into one [B, L, 3E] gradient, so linear's
    // backward sees one dY for its one GEMM.
    Tensor dx = empty({B, L, 3 * E}, x.dtype());
    AttentionGradients r{packed_part(dx, 0, heads), packed_part(dx, 1, heads),
                         packed_part(dx, 2, heads), Tensor{}};
    const Tensor xd = x.detach();
    backward_into(r, split_heads(grads[0].detach()), packed_part(xd, 0, heads),
                  packed_part(xd, 1, heads), packed_part(xd, 2, heads), split_heads(ov.detach()),
                  lv, mv, dropout_p, causal, scale, seed, false);
    return {dx};
  }
};

}  // namespace

AttentionGradients scaled_dot_product_attention_backward(
    const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& output,
    const Tensor& logsumexp, const Tensor& attn_mask, double dropout_p, bool is_causal,
    double scale, std::uint64_t seed, bool want_mask_grad) {
  return backward_into({}, grad_out, q, k, v, output, logsumexp, attn_mask, dropout_p, is_causal,
                       scale, seed, want_mask_grad);
}

Tensor scaled_dot_product_attention_packed(const Tensor& qkv, std::int64_t num_heads,
                                           const Tensor& attn_mask, double dropout_p,
                                           bool is_causal, std::optional<double> scale) {
  check(qkv.defined() && qkv.dim() == 3, kPackedOp, ": expected qkv [B, L, 3*E], got ",
        qkv.defined() ? qkv.shape() : Shape{});
  check(num_heads > 0 && qkv.size(2) % (3 * num_heads) == 0 && qkv.size(2) > 0, kPackedOp,
        ": the last dimension of qkv ", qkv.shape(), " must be 3 * num_heads (", num_heads,
        ") * head_dim");
  const std::int64_t B = qkv.size(0), L = qkv.size(1), E = qkv.size(2) / 3;
  const bool float_mask_grad =
      attn_mask.defined() && is_floating(attn_mask.dtype()) && attn_mask.requires_grad();
  if (autograd::any_batched(qkv, attn_mask) || autograd::has_tangent(qkv) ||
      (attn_mask.defined() && autograd::has_tangent(attn_mask)) || float_mask_grad ||
      qkv.strides()[2] != 1) {
    // The composition: views of qkv into scaled_dot_product_attention (its batching rule, jvp
    // and mask gradient).
    return merge_heads(scaled_dot_product_attention(
        packed_part_with_ops(qkv, 0, num_heads), packed_part_with_ops(qkv, 1, num_heads),
        packed_part_with_ops(qkv, 2, num_heads), attn_mask, dropout_p, is_causal, scale));
  }
  const Tensor x = qkv.detach();
  const Tensor q = packed_part(x, 0, num_heads), k = packed_part(x, 1, num_heads),
               v = packed_part(x, 2, num_heads);
  const Geometry g = check_inputs(q, k, v, attn_mask, dropout_p, is_causal, scale, kPackedOp);
  const std::uint64_t seed = draw_seed(dropout_p);
  AttentionForward f =
      scaled_dot_product_attention_forward(q, k, v, attn_mask, dropout_p, is_causal, g.scale, seed);
  // f.output is [B, H, L, D] in q's memory order, [B, L, H, D]: [B, L, E] without a copy.
  Tensor out(std::make_shared<TensorImpl>(f.output.storage(), Shape{B, L, E},
                                          contiguous_strides({B, L, E}), f.output.offset(),
                                          f.output.dtype()));
  record_op<PackedAttentionBackward>({&qkv}, {&out}, [&](PackedAttentionBackward& n) {
    n.qkv = n.save(qkv);
    n.mask = n.save(attn_mask);
    n.out = n.save(out);
    n.lse = n.save(f.logsumexp);
    n.heads = num_heads;
    n.dropout_p = dropout_p;
    n.scale = g.scale;
    n.causal = is_causal;
    n.seed = seed;
  });
  return out;
}

Tensor attention_dropout_mask(const Shape& batch, std::int64_t L, std::int64_t S, double dropout_p,
                              std::uint64_t seed) {
  check(dropout_p >= 0.0 && dropout_p < 1.0,
        "attention_dropout_mask: dropout_p must be in [0, 1), got ", dropout_p);
  Shape shape = batch;
  shape.push_back(L);
  shape.push_back(S);
  Tensor m = empty(shape, Dtype::boolean);
  bool* pm = m.data_ptr<bool>();
  for (std::int64_t i = 0, n = m.numel(); i < n; ++i)
    pm[i] = detail::attention_keep(seed, static_cast<std::uint64_t>(i), dropout_p);
  return m;
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& attn_mask, double dropout_p, bool is_causal,
                                    std::optional<double> scale) {
  if (autograd::any_batched(q, k, v, attn_mask))  // the batch is one more leading dimension
    return autograd::vmap_op(kOp, {q, k, v, attn_mask}, [&](const autograd::BatchedArgs& p) {
      return scaled_dot_product_attention(
          p.expanded(0), p.expanded(1), p.expanded(2),
          p[3].defined() ? p.aligned(3, p.logical_dim(0)) : Tensor{}, dropout_p, is_causal, scale);
    });
  const Geometry g = check_inputs(q, k, v, attn_mask, dropout_p, is_causal, scale, kOp);
  const std::uint64_t seed = draw_seed(dropout_p);
  AttentionForward f =
      scaled_dot_product_attention_forward(q, k, v, attn_mask, dropout_p, is_causal, g.scale, seed);
  Tensor out = f.output;
  record_op<AttentionBackward>({&q, &k, &v, &attn_mask}, {&out}, [&](AttentionBackward& n) {
    n.q = n.save(q);
    n.k = n.save(k);
    n.v = n.save(v);
    n.mask = n.save(attn_mask);
    n.out = n.save(out);
    n.lse = n.save(f.logsumexp);
    n.g = g;
    n.dropout_p = dropout_p;
    n.causal = is_causal;
    n.seed = seed;
  });
  // jvp: dS = scale·(dq·kᵀ + q·dkᵀ) + d mask, dP = P∘(dS − rowsum(P∘dS)), dO = dP·v + P·dv
  // (dropout applied to P and dP alike).
  jvp_op(kOp, {&q, &k, &v, &attn_mask}, out, [&] {
    Tensor q3 = as3(q, g), k3 = as3(k, g), v3 = as3(v, g);
    Tensor P = weights_with_ops(scores_with_ops(q3, k3, attn_mask, is_causal, g),
                                dead_rows(f.logsumexp, g));
    Tensor dS = add(matmul(as3(tangent(q), g), transpose(k3, 1, 2)),
                    matmul(q3, transpose(as3(tangent(k), g), 1, 2))) *
                g.scale;
    if (attn_mask.defined() && is_floating(attn_mask.dtype()))
      dS = add(dS, reshape(expand(tangent(attn_mask), g.scores_shape()), {g.B, g.L, g.S}));
    Tensor dP = mul(P, sub(dS, sum(mul(P, dS), -1, /*keepdim=*/true)));
    if (dropout_p > 0) {
      Tensor keep = keep_mask3(g, dropout_p, seed);
      P = dropout_with_mask(P, keep, dropout_p);
      dP = dropout_with_mask(dP, keep, dropout_p);
    }
    return unflatten(add(matmul(dP, v3), matmul(P, as3(tangent(v), g))), g);
  });
  return out;
}

Tensor scaled_dot_product_attention_math(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const Tensor& attn_mask, double dropout_p, bool is_causal,
                                         std::optional<double> scale) {
  if (autograd::any_batched(q, k, v, attn_mask))
    return autograd::vmap_op("scaled_dot_product_attention_math", {q, k, v, attn_mask},
                             [&](const autograd::BatchedArgs& p) {
                               return scaled_dot_product_attention_math(
                                   p.expanded(0), p.expanded(1), p.expanded(2),
                                   p[3].defined() ? p.aligned(3, p.logical_dim(0)) : Tensor{},
                                   dropout_p, is_causal, scale);
                             });
  const Geometry g = check_inputs(q, k, v, attn_mask, dropout_p, is_causal, scale,
                                  "scaled_dot_product_attention_math");
  const std::uint64_t seed = draw_seed(dropout_p);
  Tensor P = softmax(scores_with_ops(as3(q, g), as3(k, g), attn_mask, is_causal, g), -1);
  if (dropout_p > 0) P = dropout_with_mask(P, keep_mask3(g, dropout_p, seed), dropout_p);
  return unflatten(matmul(P, as3(v, g)), g);
}

}  // namespace xgrad
