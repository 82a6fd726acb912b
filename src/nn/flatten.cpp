#include "xgrad/nn/flatten.hpp"

#include "xgrad/ops/shape.hpp"

namespace xgrad::nn {

Tensor Flatten::forward(const Tensor& x) {
  return flatten(x, start_dim_, end_dim_);
}

}  // namespace xgrad::nn
