// Scaled dot-product attention (Vaswani et al. 2017), as torch 2.x's
// torch.nn.functional.scaled_dot_product_attention, with a fused path that never holds the
// L×S matrix (FlashAttention, Dao et al. 2022, on the CPU) and the plain composition it is
// tested against. See docs/attention.md.
#pragma once

#include <cstdint>
#include <optional>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// softmax(q·kᵀ·scale + mask) · v, per batch entry:
///   scores[..., i, j] = scale · Σ_e q[..., i, e]·k[..., j, e]   (scale defaults to 1/√E)
///   attn_mask bool:  keep (i, j) where true; false entries get −inf before the softmax
///   attn_mask float: added to the scores (−inf masks out)
///   is_causal:       keep (i, j) where j <= i (top-left aligned, tril(ones(L, S)), as torch)
///   dropout_p > 0:   each softmax weight is zeroed with probability dropout_p and the others
///                    scaled by 1/(1 − dropout_p) (applied always, as torch's functional form:
///                    pass 0 in evaluation). The keep decision of entry (b, i, j) is a
///                    counter-based hash of (seed, b, i, j), the seed one draw from
///                    xgrad::default_generator(), so manual_seed reproduces it and backward
///                    recomputes it without storing a mask.
/// The fused path: for each block of query rows it walks the keys and values in tiles, keeping
/// a running row maximum m, normaliser ℓ and unnormalised output (the online softmax), so
/// memory is O(L·E + S·E) per batch entry, not O(L·S). It saves only the output and the
/// per-row log-sum-exp lse = m + log ℓ; backward recomputes each tile's weights
/// P = exp(scores − lse) and accumulates dq, dk, dv with D = rowsum(dO ∘ O) (FlashAttention's
/// Algorithm 2). That backward is the op scaled_dot_product_attention_backward; when the
/// backward is itself recorded (create_graph, forward-over-reverse) it is written with xgrad
/// ops instead (recomputing the weights), so the op is differentiable to any order. Forward
/// mode: with dS = scale·(dq·kᵀ + q·dkᵀ) (+ d mask), dP = P ∘ (dS − rowsum(P ∘ dS)),
/// dO = dP·v + P·dv (this materialises P).
/// A query row with no kept key (all masked) gives 0 and sends no gradient — the limit of a
/// row whose kept keys are removed one by one is undefined, and 0 is the choice of the fused
/// kernels; torch 1.13's composition (and scaled_dot_product_attention_math) gives NaN there.
/// Gradients go to q, k, v and a float attn_mask that requires grad (its gradient is the
/// scores' gradient summed over the broadcast dimensions; the fused backward then writes that
/// [..., L, S] gradient, the one L×S array it ever holds).
/// Shapes: q [..., L, E], k [..., S, E], v [..., S, Ev] with the same leading dimensions
/// (at least one dimension: L, E; [L, E] alone is allowed); attn_mask broadcastable to
/// [..., L, S], bool or q's dtype; float32/float64 -> [..., L, Ev].
/// Throws when the ranks, leading dimensions or E differ, k and v disagree on S, the mask does
/// not broadcast ("scaled_dot_product_attention: attn_mask of shape [3,5] does not broadcast
/// to [2,4,6]"), a mask is given with is_causal, dropout_p is outside [0, 1), scale is not
/// finite, or the dtypes differ.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& attn_mask = {}, double dropout_p = 0.0,
                                    bool is_causal = false,
                                    std::optional<double> scale = std::nullopt);

/// The plain composition, matmul → (mask) → softmax → (dropout) → matmul, each an xgrad op, so
/// the L×S weights are stored for backward: the reference the fused path is tested against.
/// Same arguments, shapes, dropout mask (the same seed draw) and errors as
/// scaled_dot_product_attention; a row with no kept key gives NaN (softmax of all −inf), as
/// torch.
Tensor scaled_dot_product_attention_math(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const Tensor& attn_mask = {}, double dropout_p = 0.0,
                                         bool is_causal = false,
                                         std::optional<double> scale = std::nullopt);

/// Self-attention over one packed projection, as multi-head attention computes it:
/// qkv [B, L, 3·E] holds q, k and v side by side in each row (x·in_proj_weightᵀ + in_proj_bias
/// with in_proj_weight [3E, E]), each the num_heads heads of D = E / num_heads side by side;
/// returns the heads' outputs side by side, [B, L, E]: for head h,
///   out[:, :, h·D:(h+1)·D] = scaled_dot_product_attention(q_h, k_h, v_h, attn_mask, ...)
/// with q_h = qkv[:, :, h·D:(h+1)·D], k_h = qkv[:, :, E + h·D:...], v_h = qkv[:, :, 2E + h·D:...]
/// as [B, L, D] (the mask broadcastable to [B, num_heads, L, L]; other arguments as there).
/// The same values as slicing qkv and calling scaled_dot_product_attention on the heads, without
/// copying q, k, v out of qkv: the fused kernels read them in place and, at first order, the
/// backward writes dq, dk, dv straight into one [B, L, 3·E] gradient (one node, so the GEMM
/// that made qkv gets one gradient, not three slices' zero-filled ones to add). Under vmap, with
/// forward-mode tangents, or for a float mask that requires grad it is that composition.
/// Differentiable to any order (create_graph records the backward with ops).
/// Throws when qkv is not 3-D, its last dimension is not a positive multiple of
/// 3·num_heads, or as scaled_dot_product_attention.
/// Source: multi-head attention (Vaswani et al. 2017, §3.2.2) on torch's packed in_proj
/// layout; the kernels are scaled_dot_product_attention's (FlashAttention, Dao et al. 2022).
Tensor scaled_dot_product_attention_packed(const Tensor& qkv, std::int64_t num_heads,
                                           const Tensor& attn_mask = {}, double dropout_p = 0.0,
                                           bool is_causal = false,
                                           std::optional<double> scale = std::nullopt);

/// The fused forward's saved state: the output and the per-row log-sum-exp of the masked,
/// scaled scores ([..., L], −inf for a row with no kept key).
struct AttentionForward {
  Tensor output;
  Tensor logsumexp;
};

/// The fused forward alone, not recorded (no node): output and logsumexp, for a caller that
/// records its own backward. `seed` fixes the dropout hash (ignored when dropout_p is 0).
AttentionForward scaled_dot_product_attention_forward(const Tensor& q, const Tensor& k,
                                                      const Tensor& v, const Tensor& attn_mask,
                                                      double dropout_p, bool is_causal,
                                                      double scale, std::uint64_t seed);

/// The gradients of the fused backward.
struct AttentionGradients {
  Tensor grad_q;
  Tensor grad_k;
  Tensor grad_v;
  Tensor grad_mask;  ///< defined only for a float attn_mask that requires grad, shaped as it
};

/// FlashAttention's backward (Dao et al. 2022, Algorithm 2): given the output's gradient and
/// the forward's output and logsumexp, recomputes each tile's weights and returns dq, dk, dv
/// (and the float mask's gradient when want_mask_grad). One pass over the tiles, O(L·E + S·E)
/// memory. Not recorded: the autograd node calls it only when nothing differentiates the
/// backward (see scaled_dot_product_attention).
/// Shapes: as scaled_dot_product_attention; grad_out and output [..., L, Ev], logsumexp
/// [..., L].
AttentionGradients scaled_dot_product_attention_backward(
    const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& output,
    const Tensor& logsumexp, const Tensor& attn_mask, double dropout_p, bool is_causal,
    double scale, std::uint64_t seed, bool want_mask_grad = false);

/// The dropout keep-mask the fused path applies for `seed`: bool [..., L, S] over the batch
/// shape `batch` (true = kept), entry (b, i, j) kept when the hash of (seed, b·L·S + i·S + j)
/// mapped to [0, 1) is >= dropout_p. For tests and the plain path.
Tensor attention_dropout_mask(const Shape& batch, std::int64_t L, std::int64_t S, double dropout_p,
                              std::uint64_t seed);

}  // namespace xgrad
