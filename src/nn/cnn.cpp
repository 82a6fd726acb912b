#include "xgrad/nn/cnn.hpp"

#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/pool.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad::nn {

CNN::CNN(Dtype dtype) {
  conv1 = register_module(
      "conv1", std::make_shared<Conv2d>(1, 16, 3, Conv2dOptions{.padding = 1, .dtype = dtype}));
  conv2 = register_module(
      "conv2", std::make_shared<Conv2d>(16, 32, 3, Conv2dOptions{.padding = 1, .dtype = dtype}));
  LinearOptions lo;
  lo.dtype = dtype;
  fc = register_module("fc", std::make_shared<Linear>(32 * 7 * 7, 10, lo));
}

Tensor CNN::forward(const Tensor& x) {
  Tensor h;
  if (x.dim() == 2 && x.shape()[1] == 784) {
    h = reshape(x, {x.shape()[0], 1, 28, 28});
  } else if (x.dim() == 4 && x.shape()[1] == 1 && x.shape()[2] == 28 && x.shape()[3] == 28) {
    h = x;
  } else {
    fail("CNN: expected input [N,784] or [N,1,28,28], got ", x.shape());
  }
  // relu(max_pool(conv)) = max_pool(relu(conv)), with ReLU on a quarter of the elements.
  h = relu(max_pool2d((*conv1)(h), 2));  // [N, 16, 14, 14]
  h = relu(max_pool2d((*conv2)(h), 2));  // [N, 32, 7, 7]
  return (*fc)(flatten(h, 1));           // [N, 10]
}

}  // namespace xgrad::nn
