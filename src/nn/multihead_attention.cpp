#include "xgrad/nn/multihead_attention.hpp"

#include <cmath>
#include <limits>

#include "xgrad/nn/init.hpp"
#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/attention.hpp"
#include "xgrad/ops/dropout.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/linalg.hpp"
#include "xgrad/ops/masking.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad::nn {

MultiheadAttention::MultiheadAttention(std::int64_t embed_dim, std::int64_t num_heads,
                                       MultiheadAttentionOptions options)
    : embed_dim_(embed_dim),
      num_heads_(num_heads),
      dropout_(options.dropout),
      batch_first_(options.batch_first) {
  check(embed_dim > 0 && num_heads > 0, "MultiheadAttention: embed_dim (", embed_dim,
        ") and num_heads (", num_heads, ") must be positive");
  check(embed_dim % num_heads == 0, "MultiheadAttention: embed_dim ", embed_dim,
        " is not divisible by num_heads ", num_heads);
  check(options.dropout >= 0 && options.dropout < 1,
        "MultiheadAttention: dropout must be in [0, 1), got ", options.dropout);
  // torch's registration order and _reset_parameters.
  register_parameter("in_proj_weight", in_proj_weight,
                     empty({3 * embed_dim, embed_dim}, options.dtype));
  init::xavier_uniform_(in_proj_weight);
  if (options.bias) {
    register_parameter("in_proj_bias", in_proj_bias, zeros({3 * embed_dim}, options.dtype));
  }
  out_proj = register_module(
      "out_proj",
      std::make_shared<Linear>(embed_dim, embed_dim,
                               LinearOptions{.bias = options.bias, .dtype = options.dtype}));
  if (options.bias) init::zeros_(out_proj->bias);
}

Tensor MultiheadAttention::forward(const Tensor& x) {
  return forward(x, x, x).output;
}

namespace {

// An additive float mask from torch's MHA conventions (bool true = masked out).
Tensor additive(const Tensor& mask, Dtype dtype, const char* what) {
  if (mask.dtype() == boolean)
    return masked_fill(zeros(mask.shape(), dtype), mask, -std::numeric_limits<double>::infinity());
  check(mask.dtype() == dtype, "MultiheadAttention: ", what, " must be bool or ", dtype,
        " (the query's dtype), got ", mask.dtype());
  return mask;
}

}  // namespace

AttentionResult MultiheadAttention::forward(const Tensor& query, const Tensor& key,
                                            const Tensor& value, const AttentionArgs& args) {
  auto scope = enter_scope();
  check(query.defined() && key.defined() && value.defined(),
        "MultiheadAttention: query, key and value must be defined");
  const std::int64_t E = embed_dim_, H = num_heads_, D = E / H;
  const bool batched = query.dim() == 3;
  check((query.dim() == 3 || query.dim() == 2) && key.dim() == query.dim() &&
            value.dim() == query.dim(),
        "MultiheadAttention: expected query, key and value of 3 dimensions (batched) or 2 "
        "(unbatched), got ",
        query.shape(), ", ", key.shape(), " and ", value.shape());
  check(query.size(-1) == E && key.size(-1) == E && value.size(-1) == E,
        "MultiheadAttention: embed_dim is ", E, ", got query ", query.shape(), ", key ",
        key.shape(), ", value ", value.shape());
  // To [B, L, E].
  auto to_bfirst = [&](const Tensor& t) {
    if (!batched) return unsqueeze(t, 0);
    return batch_first_ ? t : transpose(t, 0, 1);
  };
  const Tensor q_in = to_bfirst(query), k_in = to_bfirst(key), v_in = to_bfirst(value);
  const std::int64_t B = q_in.size(0), L = q_in.size(1), S = k_in.size(1);
  check(k_in.size(0) == B && v_in.size(0) == B && v_in.size(1) == S, "MultiheadAttention: query ",
        query.shape(), ", key ", key.shape(), " and value ", value.shape(),
        " disagree on the batch or the source length", batch_first_ ? " (batch_first)" : "");

  // The masks, as one additive float mask broadcastable to [B, H, L, S].
  const Dtype dtype = q_in.dtype();
  auto masks = [&] {
    Tensor mask;
    if (args.attn_mask.defined()) {
      check(!args.is_causal, "MultiheadAttention: give either attn_mask or is_causal, not both");
      const Tensor& m = args.attn_mask;
      Tensor a = additive(m, dtype, "attn_mask");
      if (m.dim() == 2) {
        check(m.size(0) == L && m.size(1) == S, "MultiheadAttention: attn_mask of shape ",
              m.shape(), " should be [", L, ",", S, "]");
        mask = reshape(a, {1, 1, L, S});
      } else {
        check(m.dim() == 3 && m.size(0) == B * H && m.size(1) == L && m.size(2) == S,
              "MultiheadAttention: attn_mask of shape ", m.shape(), " should be [", L, ",", S,
              "] or [", B * H, ",", L, ",", S, "]");
        mask = reshape(a, {B, H, L, S});
      }
    }
    if (args.key_padding_mask.defined()) {
      const Tensor& m = args.key_padding_mask;
      const Shape want = batched ? Shape{B, S} : Shape{S};
      check(m.shape() == want, "MultiheadAttention: key_padding_mask of shape ", m.shape(),
            " should be ", want);
      Tensor a = reshape(additive(m, dtype, "key_padding_mask"), {B, 1, 1, S});
      mask = mask.defined() ? add(mask, a) : a;
    }
    return mask;
  };
  const double p = is_training() ? dropout_ : 0.0;
  if (!args.need_weights && query.impl() == key.impl() && key.impl() == value.impl()) {
    // Self-attention: q, k and v from one GEMM with all of in_proj_weight, [B, T, 3E], which
    // the packed fused attention reads in place; its backward writes their gradients into one
    // [B, T, 3E] tensor, so the backward is one GEMM for dx and one for the weight too.
    Tensor out = scaled_dot_product_attention_packed(linear(q_in, in_proj_weight, in_proj_bias), H,
                                                     masks(), p, args.is_causal);
    out = (*out_proj)(out);
    if (!batched)
      out = squeeze(out, 0);
    else if (!batch_first_)
      out = transpose(out, 0, 1);
    return {out, Tensor{}};
  }
  // Otherwise (query, key and value differ, or the weights are wanted): three GEMMs with the
  // slices of in_proj_weight; q, k and v are each contiguous [B, T, E], their heads views
  // [B, H, T, D] that the fused attention reads in place.
  auto w = [&](std::int64_t i) { return slice(in_proj_weight, 0, i * E, (i + 1) * E); };
  auto b = [&](std::int64_t i) {
    return in_proj_bias.defined() ? slice(in_proj_bias, 0, i * E, (i + 1) * E) : Tensor();
  };
  // [B, T, E] -> [B, H, T, D]
  auto heads = [&](const Tensor& t, std::int64_t T) {
    return permute(reshape(t, {B, T, H, D}), {0, 2, 1, 3});
  };
  Tensor q = heads(linear(q_in, w(0), b(0)), L);
  Tensor k = heads(linear(k_in, w(1), b(1)), S);
  Tensor v = heads(linear(v_in, w(2), b(2)), S);
  const Tensor mask = masks();

  Tensor out, weights;  // out [B, H, L, D]
  if (args.need_weights) {
    // matmul is at most 3-D: the heads go into the batch.
    const Tensor q3 = reshape(q * (1.0 / std::sqrt(static_cast<double>(D))), {B * H, L, D});
    Tensor scores = reshape(matmul(q3, transpose(reshape(k, {B * H, S, D}), 1, 2)), {B, H, L, S});
    if (mask.defined()) scores = add(scores, mask);
    if (args.is_causal)
      scores = masked_fill(scores, triu(ones({L, S}, boolean), 1),
                           -std::numeric_limits<double>::infinity());
    weights = softmax(scores, -1);
    if (p > 0) weights = dropout(weights, p, true);
    out = reshape(matmul(reshape(weights, {B * H, L, S}), reshape(v, {B * H, S, D})), {B, H, L, D});
    if (args.average_attn_weights) weights = mean(weights, 1);
    if (!batched) weights = squeeze(weights, 0);
  } else {
    out = scaled_dot_product_attention(q, k, v, mask, p, args.is_causal);
  }
  out = reshape(permute(out, {0, 2, 1, 3}), {B, L, E});
  out = (*out_proj)(out);
  if (!batched)
    out = squeeze(out, 0);
  else if (!batch_first_)
    out = transpose(out, 0, 1);
  return {out, weights};
}

}  // namespace xgrad::nn
