// Embedding: a learned lookup table from integer ids to vectors.
#pragma once

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// torch.nn.Embedding (without padding_idx / max_norm): weight [num_embeddings, embedding_dim],
/// initialised from N(0, 1) as torch does. forward: indices int64 [...] -> [..., embedding_dim];
/// the weight's gradient is scatter-added (an id used twice gets the sum). Throws xgrad::Error for
/// non-positive sizes, non-int64 indices or an index outside [0, num_embeddings).
class Embedding : public Module {
 public:
  Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, Dtype dtype = default_dtype());
  Tensor weight;
  std::int64_t num_embeddings() const { return weight.size(0); }
  std::int64_t embedding_dim() const { return weight.size(1); }
  std::string type_name() const override { return "Embedding"; }

 protected:
  Tensor forward(const Tensor& indices) override;
};

}  // namespace xgrad::nn
