#include "xgrad/nn/embedding.hpp"

#include "xgrad/nn/init.hpp"
#include "xgrad/ops/indexing.hpp"

namespace xgrad::nn {

Embedding::Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, Dtype dtype) {
  check(num_embeddings > 0 && embedding_dim > 0,
        "Embedding: sizes must be positive, got num_embeddings=", num_embeddings,
        " embedding_dim=", embedding_dim);
  register_parameter("weight", weight, empty({num_embeddings, embedding_dim}, dtype));
  init::normal_(weight, 0.0, 1.0);  // torch's reset_parameters
}

Tensor Embedding::forward(const Tensor& indices) {
  return embedding(indices, weight);
}

}  // namespace xgrad::nn
