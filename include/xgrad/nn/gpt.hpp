// GPT: a decoder-only transformer language model (Radford et al. 2018/2019), as in Karpathy's
// nanoGPT, built from the library's modules: what `xgrad-train --model gpt` trains.
#pragma once

#include <memory>

#include "xgrad/nn/embedding.hpp"
#include "xgrad/nn/layer_norm.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/module_list.hpp"
#include "xgrad/nn/transformer.hpp"

namespace xgrad::nn {

struct GPTConfig {
  std::int64_t vocab_size = 0;
  /// The longest context (positions 0..block_size-1 have embeddings).
  std::int64_t block_size = 64;
  std::int64_t n_layer = 4;
  std::int64_t n_head = 4;
  std::int64_t n_embd = 128;
  double dropout = 0.0;
  Dtype dtype = default_dtype();
};

/// A character-level (any token-level) decoder-only transformer:
///   h = token_embedding(idx) + position_embedding(0..T-1)
///   h = block_i(h) for each of n_layer pre-LayerNorm blocks (TransformerEncoderLayer with
///       norm_first, causal self-attention of n_head heads, a GELU MLP of 4·n_embd, batch_first)
///   logits = head(ln_f(h))
/// Children: token_embedding [V, C], position_embedding [block_size, C], blocks (a ModuleList:
/// "blocks.0.self_attn.in_proj_weight", ...), ln_f, head [V, C] (+ bias [V]); the same names
/// as the twin in tools/torch_gpt.py, so its state_dict loads unchanged.
/// Initialisation (GPT-2's, as nanoGPT): every Linear weight, in_proj_weight and embedding from
/// N(0, 0.02²), the residual projections (self_attn.out_proj.weight, linear2.weight) from
/// N(0, (0.02/√(2·n_layer))²), biases 0, LayerNorms 1 and 0.
/// forward: idx int64 [B, T] (T <= block_size) -> logits [B, T, V].
/// Throws xgrad::Error for sizes that are not positive, n_embd not divisible by n_head, and
/// in forward for another rank or dtype, T > block_size, or a token id outside [0, V).
class GPT : public Module {
 public:
  explicit GPT(GPTConfig config);
  /// Mean cross-entropy (nats per token) of the logits of idx [B, T] against targets [B, T].
  Tensor loss(const Tensor& idx, const Tensor& targets);
  /// Continues each row of context int64 [B, T0] (T0 >= 1) by max_new_tokens tokens, one at a
  /// time: the logits of the last position (the context cropped to its last block_size
  /// tokens) divided by temperature, only the top_k largest kept when top_k > 0, softmax, one
  /// multinomial draw from the default generator (manual_seed reproduces it). Runs without
  /// recording and in evaluation mode (restoring the mode after). Returns int64
  /// [B, T0 + max_new_tokens]. Throws xgrad::Error for temperature <= 0, top_k < 0,
  /// max_new_tokens < 0, or a bad context.
  Tensor generate(const Tensor& context, std::int64_t max_new_tokens, double temperature = 1.0,
                  std::int64_t top_k = 0);
  const GPTConfig& config() const { return config_; }
  std::shared_ptr<Embedding> token_embedding, position_embedding;
  std::shared_ptr<ModuleList> blocks;
  std::shared_ptr<LayerNorm> ln_f;
  std::shared_ptr<Linear> head;
  TransformerEncoderLayer& block(std::size_t i) const {
    return blocks->at<TransformerEncoderLayer>(i);
  }
  std::string type_name() const override { return "GPT"; }

 protected:
  Tensor forward(const Tensor& idx) override;

 private:
  GPTConfig config_;
};

}  // namespace xgrad::nn
