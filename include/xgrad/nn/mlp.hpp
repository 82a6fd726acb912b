// MLP: a stack of Linear layers with ReLU between them, children named fc1, fc2, ...
#pragma once

#include <memory>
#include <vector>

#include "xgrad/nn/batchnorm.hpp"
#include "xgrad/nn/linear.hpp"

namespace xgrad::nn {

/// Multi-layer perceptron: sizes {784, 256, 128, 10} gives fc1 (784→256), ReLU, fc2
/// (256→128), ReLU, fc3 (128→10), the main job's model; parameters are named as torch names
/// them in the same class ("fc1.weight", ...). forward: x [N, sizes.front()] ->
/// [N, sizes.back()] logits. Throws xgrad::Error for fewer than two sizes.
///
/// With batch_norm, every hidden layer is followed by a BatchNorm1d before its ReLU: fc1, bn1,
/// ReLU, fc2, bn2, ReLU, fc3, registered in that order (torch's state_dict then lists
/// "fc1.weight", "fc1.bias", "bn1.weight", ..., "bn1.num_batches_tracked", "fc2.weight", ...).
class MLP : public Module {
 public:
  explicit MLP(const std::vector<std::int64_t>& sizes, LinearOptions options = {},
               bool batch_norm = false);
  std::string type_name() const override { return "MLP"; }
  const std::vector<std::shared_ptr<Linear>>& layers() const { return layers_; }
  /// The batch norms after the hidden layers (empty without batch_norm).
  const std::vector<std::shared_ptr<BatchNorm1d>>& norms() const { return norms_; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<std::shared_ptr<Linear>> layers_;
  std::vector<std::shared_ptr<BatchNorm1d>> norms_;
};

}  // namespace xgrad::nn
