#include "xgrad/nn/mlp.hpp"

#include "xgrad/ops/activation.hpp"

namespace xgrad::nn {

MLP::MLP(const std::vector<std::int64_t>& sizes, LinearOptions options, bool batch_norm) {
  check(sizes.size() >= 2, "MLP: need at least an input and an output size, got ", sizes.size());
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    const std::string n = std::to_string(i + 1);
    layers_.push_back(
        register_module("fc" + n, std::make_shared<Linear>(sizes[i], sizes[i + 1], options)));
    if (batch_norm && i + 2 < sizes.size()) {
      BatchNormOptions bo;
      bo.dtype = options.dtype;
      norms_.push_back(register_module("bn" + n, std::make_shared<BatchNorm1d>(sizes[i + 1], bo)));
    }
  }
}

Tensor MLP::forward(const Tensor& x) {
  Tensor h = x;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    h = (*layers_[i])(h);
    if (i < norms_.size()) h = (*norms_[i])(h);
    if (i + 1 < layers_.size()) h = relu(h);
  }
  return h;
}

}  // namespace xgrad::nn
