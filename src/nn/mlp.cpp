#include "xgrad/nn/mlp.hpp"

#include "xgrad/ops/activation.hpp"

namespace xgrad::nn {

MLP::MLP(const std::vector<std::int64_t>& sizes, LinearOptions options) {
  check(sizes.size() >= 2, "MLP: need at least an input and an output size, got ", sizes.size());
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    layers_.push_back(register_module("fc" + std::to_string(i + 1),
                                      std::make_shared<Linear>(sizes[i], sizes[i + 1], options)));
  }
}

Tensor MLP::forward(const Tensor& x) {
  Tensor h = x;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    h = (*layers_[i])(h);
    if (i + 1 < layers_.size()) h = relu(h);
  }
  return h;
}

}  // namespace xgrad::nn
