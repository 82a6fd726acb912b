#include "xgrad/nn/gpt.hpp"

#include <cmath>
#include <limits>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/nn/init.hpp"
#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/comparison.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/loss.hpp"
#include "xgrad/ops/masking.hpp"
#include "xgrad/ops/sampling.hpp"
#include "xgrad/ops/shape.hpp"
#include "xgrad/ops/tensor_index.hpp"
#include "xgrad/ops/topk.hpp"

namespace xgrad::nn {

GPT::GPT(GPTConfig c) : config_(c) {
  check(c.vocab_size > 0 && c.block_size > 0 && c.n_layer > 0 && c.n_head > 0 && c.n_embd > 0,
        "GPT: vocab_size (", c.vocab_size, "), block_size (", c.block_size, "), n_layer (",
        c.n_layer, "), n_head (", c.n_head, ") and n_embd (", c.n_embd, ") must be positive");
  check(c.n_embd % c.n_head == 0, "GPT: n_embd ", c.n_embd, " is not divisible by n_head ",
        c.n_head);
  token_embedding = register_module("token_embedding",
                                    std::make_shared<Embedding>(c.vocab_size, c.n_embd, c.dtype));
  position_embedding = register_module(
      "position_embedding", std::make_shared<Embedding>(c.block_size, c.n_embd, c.dtype));
  blocks = register_module("blocks", std::make_shared<ModuleList>());
  const TransformerEncoderLayerOptions layer{.dim_feedforward = 4 * c.n_embd,
                                             .dropout = c.dropout,
                                             .activation = "gelu",
                                             .batch_first = true,
                                             .norm_first = true,
                                             .dtype = c.dtype};
  for (std::int64_t i = 0; i < c.n_layer; ++i)
    blocks->push_back(std::make_shared<TransformerEncoderLayer>(c.n_embd, c.n_head, layer));
  ln_f = register_module("ln_f",
                         std::make_shared<LayerNorm>(c.n_embd, LayerNormOptions{.dtype = c.dtype}));
  head = register_module(
      "head", std::make_shared<Linear>(c.n_embd, c.vocab_size, LinearOptions{.dtype = c.dtype}));

  // GPT-2's initialisation (nanoGPT's _init_weights and c_proj rule).
  const double std = 0.02, proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(c.n_layer));
  init::normal_(token_embedding->weight, 0.0, std);
  init::normal_(position_embedding->weight, 0.0, std);
  for (std::size_t i = 0; i < blocks->size(); ++i) {
    TransformerEncoderLayer& b = block(i);
    init::normal_(b.self_attn->in_proj_weight, 0.0, std);
    init::zeros_(b.self_attn->in_proj_bias);
    init::normal_(b.self_attn->out_proj->weight, 0.0, proj_std);
    init::zeros_(b.self_attn->out_proj->bias);
    init::normal_(b.linear1->weight, 0.0, std);
    init::zeros_(b.linear1->bias);
    init::normal_(b.linear2->weight, 0.0, proj_std);
    init::zeros_(b.linear2->bias);
  }
  init::normal_(head->weight, 0.0, std);
  init::zeros_(head->bias);
}

Tensor GPT::forward(const Tensor& idx) {
  check(idx.defined() && idx.dtype() == int64 && idx.dim() == 2,
        "GPT: expected int64 token ids [B, T], got ", idx.defined() ? idx.shape() : Shape{},
        idx.defined() ? "" : " (undefined)");
  const std::int64_t T = idx.size(1);
  check(T >= 1 && T <= config_.block_size, "GPT: sequence length ", T,
        " is outside [1, block_size = ", config_.block_size, "]");
  const Tensor pos = arange(static_cast<double>(T), int64);
  Tensor h = (*token_embedding)(idx) + (*position_embedding)(pos);  // [B, T, C]
  for (std::size_t i = 0; i < blocks->size(); ++i)
    h = block(i).forward(h, Tensor(), Tensor(), /*is_causal=*/true);
  return (*head)((*ln_f)(h));
}

Tensor GPT::loss(const Tensor& idx, const Tensor& targets) {
  Tensor logits = (*this)(idx);
  const std::int64_t V = config_.vocab_size;
  check(targets.defined() && targets.shape() == idx.shape(), "GPT::loss: targets of shape ",
        targets.defined() ? targets.shape() : Shape{}, " should be ", idx.shape());
  return cross_entropy(reshape(logits, {-1, V}), reshape(targets, {-1}));
}

Tensor GPT::generate(const Tensor& context, std::int64_t max_new_tokens, double temperature,
                     std::int64_t top_k) {
  check(temperature > 0 && std::isfinite(temperature),
        "GPT::generate: temperature must be > 0, got ", temperature);
  check(top_k >= 0, "GPT::generate: top_k must be >= 0 (0: all tokens), got ", top_k);
  check(max_new_tokens >= 0, "GPT::generate: max_new_tokens must be >= 0, got ", max_new_tokens);
  check(context.defined() && context.dtype() == int64 && context.dim() == 2 && context.size(1) >= 1,
        "GPT::generate: expected an int64 context [B, T0] with T0 >= 1");
  no_grad guard;
  const bool was_training = is_training();
  eval();
  Tensor seq = context;
  const std::int64_t k = std::min(top_k, config_.vocab_size);
  for (std::int64_t n = 0; n < max_new_tokens; ++n) {
    const std::int64_t T = seq.size(1);
    const Tensor ctx = slice(seq, 1, std::max<std::int64_t>(0, T - config_.block_size), T);
    Tensor logits = (*this)(ctx);
    logits = select(logits, 1, logits.size(1) - 1) / temperature;  // [B, V]
    if (k > 0) {
      const Tensor kth = slice(topk(logits, k).values, 1, k - 1, k);  // [B, 1]
      logits = masked_fill(logits, lt(logits, kth), -std::numeric_limits<double>::infinity());
    }
    const Tensor next = multinomial(softmax(logits, -1), 1);  // [B, 1]
    seq = concat({seq, next}, 1);
  }
  train(was_training);
  return seq;
}

}  // namespace xgrad::nn
