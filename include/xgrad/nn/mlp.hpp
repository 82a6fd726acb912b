// MLP: a stack of Linear layers with ReLU between them, children named fc1, fc2, ...
#pragma once

#include <memory>
#include <vector>

#include "xgrad/nn/linear.hpp"

namespace xgrad::nn {

/// Multi-layer perceptron: sizes {784, 256, 128, 10} gives fc1 (784→256), ReLU, fc2
/// (256→128), ReLU, fc3 (128→10), the main job's model; parameters are named as torch names
/// them in the same class ("fc1.weight", ...). forward: x [N, sizes.front()] ->
/// [N, sizes.back()] logits. Throws xgrad::Error for fewer than two sizes.
class MLP : public Module {
 public:
  explicit MLP(const std::vector<std::int64_t>& sizes, LinearOptions options = {});
  std::string type_name() const override { return "MLP"; }
  const std::vector<std::shared_ptr<Linear>>& layers() const { return layers_; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<std::shared_ptr<Linear>> layers_;
};

}  // namespace xgrad::nn
