// MultiheadAttention: attention over num_heads subspaces with learned projections.
#pragma once

#include <memory>

#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

struct MultiheadAttentionOptions {
  /// Dropout probability on the attention weights (training mode only).
  double dropout = 0.0;
  /// in_proj_bias and out_proj.bias.
  bool bias = true;
  /// Inputs and outputs [B, L, E] when true, [L, B, E] (torch's default) when false.
  bool batch_first = false;
  Dtype dtype = default_dtype();
};

/// What MultiheadAttention::forward takes besides query, key and value (torch's keyword
/// arguments).
struct AttentionArgs {
  /// bool [B, S] (true: this key is padding, ignored) or float [B, S] added to the scores;
  /// [S] for unbatched input.
  Tensor key_padding_mask = {};
  /// Return the attention weights too. Off by default here (torch's default is on): the
  /// weights are the L×S matrix that the fused path never stores.
  bool need_weights = false;
  /// bool (true: query i may NOT attend to key j — torch's convention, the opposite of
  /// scaled_dot_product_attention's) or float (added to the scores), shape [L, S] or
  /// [B·num_heads, L, S].
  Tensor attn_mask = {};
  /// Return the weights averaged over the heads ([B, L, S]) rather than per head
  /// ([B, num_heads, L, S]).
  bool average_attn_weights = true;
  /// Causal self-attention: query i attends to keys j <= i (torch 2.x's is_causal, here a
  /// real mask, not a hint): goes to the fused attention's is_causal path, which skips the
  /// masked tiles. Not together with attn_mask.
  bool is_causal = false;
};

/// MultiheadAttention's result: the output [B, L, E] ([L, B, E] when not batch_first, [L, E]
/// for unbatched input), and, with need_weights, the attention weights (see AttentionArgs).
struct AttentionResult {
  Tensor output;
  Tensor weights;
};

/// torch.nn.MultiheadAttention (Vaswani et al. 2017, §3.2.2) with embed_dim = kdim = vdim:
///   q = query·W_qᵀ + b_q, k = key·W_kᵀ + b_k, v = value·W_vᵀ + b_v   (W_q, W_k, W_v the
///   three [E, E] blocks of in_proj_weight, in that order), split into num_heads heads of
///   E / num_heads, softmax(q·kᵀ/√(E/num_heads) + masks)·v per head, the heads concatenated,
///   then out_proj.
/// Parameters under torch's names, so a torch state_dict loads unchanged: in_proj_weight
/// [3E, E] (Xavier-uniform), in_proj_bias [3E] (zeros), out_proj.weight [E, E] (Linear's
/// default init), out_proj.bias [E] (zeros).
/// Without need_weights the heads go through the fused scaled_dot_product_attention (no L×S
/// matrix is stored); with it, through the plain composition, and the returned weights are
/// those the output was computed with: masked entries are 0 (torch 1.13's Python module does
/// this; libtorch up to 1.11 returned weights that ignored attn_mask, pytorch#80494). A query
/// row whose every key is masked gives 0 on the fused path and NaN on the plain one (as torch).
/// Shapes (batch_first): query [B, L, E], key and value [B, S, E] -> output [B, L, E]; without
/// batch_first [L, B, E] / [S, B, E]; unbatched [L, E] / [S, E] (key_padding_mask [S]).
/// Throws xgrad::Error when embed_dim is not divisible by num_heads, dropout is outside
/// [0, 1), and in forward for inputs of other ranks or sizes, or masks of other shapes
/// (naming the shapes), or is_causal with an attn_mask.
class MultiheadAttention : public Module {
 public:
  MultiheadAttention(std::int64_t embed_dim, std::int64_t num_heads,
                     MultiheadAttentionOptions options = {});
  /// Attention of query to key/value, as torch's forward(query, key, value, ...).
  AttentionResult forward(const Tensor& query, const Tensor& key, const Tensor& value,
                          const AttentionArgs& args = {});
  Tensor in_proj_weight, in_proj_bias;
  std::shared_ptr<Linear> out_proj;
  std::int64_t embed_dim() const { return embed_dim_; }
  std::int64_t num_heads() const { return num_heads_; }
  bool batch_first() const { return batch_first_; }
  std::string type_name() const override { return "MultiheadAttention"; }

 protected:
  /// Self-attention without masks: forward(x, x, x).output.
  Tensor forward(const Tensor& x) override;

 private:
  std::int64_t embed_dim_, num_heads_;
  double dropout_;
  bool batch_first_;
};

}  // namespace xgrad::nn
