#include "xgrad/nn/dropout.hpp"

#include "xgrad/ops/dropout.hpp"

namespace xgrad::nn {

Dropout::Dropout(double p) : p_(p) {
  check(p >= 0.0 && p <= 1.0, "Dropout: dropout probability has to be between 0 and 1, got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  return dropout(x, p_, is_training());
}

}  // namespace xgrad::nn
