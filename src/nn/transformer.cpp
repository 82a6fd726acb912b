#include "xgrad/nn/transformer.hpp"

#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/elementwise.hpp"

namespace xgrad::nn {

TransformerEncoderLayer::TransformerEncoderLayer(std::int64_t d_model, std::int64_t nhead,
                                                 TransformerEncoderLayerOptions o)
    : norm_first_(o.norm_first), gelu_(o.activation == "gelu") {
  check(o.activation == "relu" || o.activation == "gelu",
        "TransformerEncoderLayer: activation must be relu or gelu, got '", o.activation, "'");
  check(d_model > 0 && nhead > 0 && o.dim_feedforward > 0, "TransformerEncoderLayer: d_model (",
        d_model, "), nhead (", nhead, ") and dim_feedforward (", o.dim_feedforward,
        ") must be positive");
  // torch's registration order, which is its state_dict order.
  self_attn = register_module(
      "self_attn", std::make_shared<MultiheadAttention>(
                       d_model, nhead,
                       MultiheadAttentionOptions{
                           .dropout = o.dropout, .batch_first = o.batch_first, .dtype = o.dtype}));
  linear1 = register_module("linear1", std::make_shared<Linear>(d_model, o.dim_feedforward,
                                                                LinearOptions{.dtype = o.dtype}));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout));
  linear2 = register_module("linear2", std::make_shared<Linear>(o.dim_feedforward, d_model,
                                                                LinearOptions{.dtype = o.dtype}));
  const LayerNormOptions ln{.eps = o.layer_norm_eps, .dtype = o.dtype};
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(d_model, ln));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(d_model, ln));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout));
}

Tensor TransformerEncoderLayer::sa_block(const Tensor& x, const Tensor& mask, const Tensor& kpm,
                                         bool is_causal) {
  Tensor y = self_attn
                 ->forward(x, x, x,
                           {.key_padding_mask = kpm,
                            .need_weights = false,
                            .attn_mask = mask,
                            .is_causal = is_causal})
                 .output;
  return (*dropout1)(y);
}

Tensor TransformerEncoderLayer::ff_block(const Tensor& x) {
  // gelu: linear1 and the activation as one op whose [rows, dim_feedforward] product stays
  // in the cache (the same values); with hooks on linear1, the module call that runs them.
  Tensor h;
  if (gelu_ && !linear1->has_hooks()) {
    h = linear1->forward_gelu(x);
  } else {
    h = (*linear1)(x);
    h = gelu_ ? gelu(h) : relu(h);
  }
  return (*dropout2)((*linear2)((*dropout)(h)));
}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const Tensor& src_mask,
                                        const Tensor& src_key_padding_mask, bool is_causal) {
  auto scope = enter_scope();
  Tensor x = src;
  if (norm_first_) {
    x = x + sa_block((*norm1)(x), src_mask, src_key_padding_mask, is_causal);
    x = x + ff_block((*norm2)(x));
  } else {
    x = (*norm1)(x + sa_block(x, src_mask, src_key_padding_mask, is_causal));
    x = (*norm2)(x + ff_block(x));
  }
  return x;
}

Tensor TransformerEncoderLayer::forward(const Tensor& src) {
  return forward(src, Tensor());
}

TransformerEncoder::TransformerEncoder(std::int64_t d_model, std::int64_t nhead,
                                       std::int64_t num_layers,
                                       TransformerEncoderLayerOptions layer_options,
                                       bool final_norm) {
  check(num_layers >= 1, "TransformerEncoder: num_layers must be >= 1, got ", num_layers);
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (std::int64_t i = 0; i < num_layers; ++i) {
    auto layer = std::make_shared<TransformerEncoderLayer>(d_model, nhead, layer_options);
    if (i > 0) layer->load_state_dict(this->layer(0).state_dict());  // torch's deep copies
    layers->push_back(layer);
  }
  if (final_norm)
    norm = register_module(
        "norm",
        std::make_shared<LayerNorm>(d_model, LayerNormOptions{.eps = layer_options.layer_norm_eps,
                                                              .dtype = layer_options.dtype}));
}

Tensor TransformerEncoder::forward(const Tensor& src, const Tensor& mask,
                                   const Tensor& src_key_padding_mask, bool is_causal) {
  auto scope = enter_scope();
  Tensor x = src;
  for (std::size_t i = 0; i < num_layers(); ++i)
    x = layer(i).forward(x, mask, src_key_padding_mask, is_causal);
  return norm ? (*norm)(x) : x;
}

Tensor TransformerEncoder::forward(const Tensor& src) {
  return forward(src, Tensor());
}

}  // namespace xgrad::nn
