#include "xgrad/nn/linear.hpp"

#include <cmath>

#include "xgrad/nn/init.hpp"
#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/linalg.hpp"

namespace xgrad::nn {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, LinearOptions options) {
  check(in_features > 0 && out_features > 0,
        "Linear: features must be positive, got in=", in_features, " out=", out_features);
  register_parameter("weight", weight, empty({out_features, in_features}, options.dtype));
  if (options.init_std) {
    init::normal_(weight, 0.0, *options.init_std);
  } else {
    init::kaiming_uniform_(weight, std::sqrt(5.0));  // torch's reset_parameters
  }
  if (options.bias) {
    register_parameter("bias", bias, empty({out_features}, options.dtype));
    if (options.init_std) {
      init::zeros_(bias);
    } else {
      const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
      init::uniform_(bias, -bound, bound);
    }
  }
}

Tensor Linear::forward(const Tensor& x) {
  return linear(x, weight, bias);
}

Tensor Linear::forward_gelu(const Tensor& x) {
  auto scope = enter_scope();
  return linear_gelu(x, weight, bias);
}

}  // namespace xgrad::nn
