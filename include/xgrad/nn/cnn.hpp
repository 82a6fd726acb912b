// CNN: the small convolutional network for 28×28 grey images (Fashion-MNIST, MNIST).
#pragma once

#include <memory>

#include "xgrad/nn/conv.hpp"
#include "xgrad/nn/linear.hpp"

namespace xgrad::nn {

/// conv1 (1→16, 3×3, padding 1), ReLU, 2×2 max pool, conv2 (16→32, 3×3, padding 1), ReLU,
/// 2×2 max pool, flatten, fc (1568→10), with torch's default initialisation; parameters are
/// named as torch names them in the same class: "conv1.weight", "conv1.bias",
/// "conv2.weight", "conv2.bias", "fc.weight", "fc.bias" (20,490 numbers in all).
///
/// forward: x [N, 784] (flattened images, as DataLoader yields them) or [N, 1, 28, 28] ->
/// logits [N, 10]. ReLU is applied after each max pool rather than before: the two commute
/// (max(relu(a), relu(b)) = relu(max(a, b))), so outputs and every gradient are the same as
/// torch's order gives (a window whose maximum is ≤ 0 passes no gradient either way), and
/// ReLU touches 4× fewer elements. Throws
/// xgrad::Error naming "CNN" and the shape for any other input shape.
class CNN : public Module {
 public:
  explicit CNN(Dtype dtype = default_dtype());
  std::string type_name() const override { return "CNN"; }
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<Linear> fc;

 protected:
  Tensor forward(const Tensor& x) override;
};

}  // namespace xgrad::nn
