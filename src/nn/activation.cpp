#include "xgrad/nn/activation.hpp"

#include "xgrad/ops/activation.hpp"

namespace xgrad::nn {

Tensor ReLU::forward(const Tensor& x) {
  return relu(x);
}
Tensor Tanh::forward(const Tensor& x) {
  return tanh(x);
}
Tensor Sigmoid::forward(const Tensor& x) {
  return sigmoid(x);
}

Tensor GELU::forward(const Tensor& x) {
  return gelu(x);
}

}  // namespace xgrad::nn
