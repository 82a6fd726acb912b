// TransformerEncoderLayer and TransformerEncoder (Vaswani et al. 2017, "Attention Is All You
// Need"), with torch's parameter names.
#pragma once

#include <memory>
#include <string>

#include "xgrad/nn/dropout.hpp"
#include "xgrad/nn/layer_norm.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/module_list.hpp"
#include "xgrad/nn/multihead_attention.hpp"

namespace xgrad::nn {

struct TransformerEncoderLayerOptions {
  std::int64_t dim_feedforward = 2048;
  /// Dropout after the attention, inside the feed-forward block and after it, and on the
  /// attention weights (training mode only).
  double dropout = 0.1;
  /// "relu" (torch's default) or "gelu" (exact).
  std::string activation = "relu";
  double layer_norm_eps = 1e-5;
  /// [B, L, E] when true, [L, B, E] (torch's default) when false.
  bool batch_first = false;
  /// Pre-LayerNorm (x + sa(norm1(x)), then x + ff(norm2(x))) when true; post-LayerNorm
  /// (norm1(x + sa(x)), then norm2(x + ff(x))), the original transformer, when false.
  bool norm_first = false;
  Dtype dtype = default_dtype();
};

/// torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation,
/// layer_norm_eps, batch_first, norm_first): self-attention then a feed-forward block
/// linear2(dropout(activation(linear1(x)))), each with a residual connection and a LayerNorm
/// (before the block with norm_first — Xiong et al. 2020 — after it without).
/// Children, as torch's (so torch's state_dict loads unchanged): self_attn
/// (MultiheadAttention), linear1 [dim_feedforward, d_model], dropout, linear2 [d_model,
/// dim_feedforward], norm1, norm2 (LayerNorm(d_model)), dropout1, dropout2.
/// Shapes: src [B, L, d_model] with batch_first, [L, B, d_model] without, [L, d_model]
/// unbatched -> the same shape. Masks as MultiheadAttention's (src_mask is its attn_mask,
/// src_key_padding_mask its key_padding_mask).
/// Throws xgrad::Error for an activation other than relu or gelu, sizes that are not positive,
/// d_model not divisible by nhead, and in forward as MultiheadAttention.
class TransformerEncoderLayer : public Module {
 public:
  TransformerEncoderLayer(std::int64_t d_model, std::int64_t nhead,
                          TransformerEncoderLayerOptions options = {});
  /// The layer with masks: src_mask bool (true: masked out) or float [L, S] or [B·nhead, L,
  /// S]; src_key_padding_mask bool [B, S]; is_causal: causal self-attention without a mask
  /// tensor (the fused attention's causal path).
  Tensor forward(const Tensor& src, const Tensor& src_mask, const Tensor& src_key_padding_mask = {},
                 bool is_causal = false);
  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2;
  std::shared_ptr<LayerNorm> norm1, norm2;
  bool norm_first() const { return norm_first_; }
  std::string type_name() const override { return "TransformerEncoderLayer"; }

 protected:
  /// The layer without masks.
  Tensor forward(const Tensor& src) override;

 private:
  Tensor sa_block(const Tensor& x, const Tensor& mask, const Tensor& kpm, bool is_causal);
  Tensor ff_block(const Tensor& x);
  bool norm_first_;
  bool gelu_;
};

/// torch.nn.TransformerEncoder(encoder_layer, num_layers, norm): num_layers layers applied in
/// turn, then an optional final LayerNorm. As torch (which deep-copies one layer), every layer
/// starts with the same parameters: those of the first, built from `layer_options`. Children:
/// layers (a ModuleList: "layers.0.self_attn.in_proj_weight", ...) and, with final_norm,
/// norm ("norm.weight", "norm.bias").
/// Shapes and masks as TransformerEncoderLayer's. Throws xgrad::Error for num_layers < 1 and
/// as TransformerEncoderLayer.
class TransformerEncoder : public Module {
 public:
  TransformerEncoder(std::int64_t d_model, std::int64_t nhead, std::int64_t num_layers,
                     TransformerEncoderLayerOptions layer_options = {}, bool final_norm = false);
  Tensor forward(const Tensor& src, const Tensor& mask, const Tensor& src_key_padding_mask = {},
                 bool is_causal = false);
  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<LayerNorm> norm;  ///< null without final_norm
  std::size_t num_layers() const { return layers->size(); }
  TransformerEncoderLayer& layer(std::size_t i) const {
    return layers->at<TransformerEncoderLayer>(i);
  }
  std::string type_name() const override { return "TransformerEncoder"; }

 protected:
  Tensor forward(const Tensor& src) override;
};

}  // namespace xgrad::nn
