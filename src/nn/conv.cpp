#include "xgrad/nn/conv.hpp"

#include <cmath>

#include "xgrad/nn/init.hpp"

namespace xgrad::nn {

Conv2d::Conv2d(std::int64_t in_channels, std::int64_t out_channels, Size2 kernel_size,
               Conv2dOptions options)
    : options_(options) {
  check(in_channels > 0 && out_channels > 0,
        "Conv2d: channels must be positive, got in=", in_channels, " out=", out_channels);
  check(kernel_size.h > 0 && kernel_size.w > 0, "Conv2d: kernel size must be positive, got ",
        kernel_size.h, "x", kernel_size.w);
  check(options.groups >= 1 && in_channels % options.groups == 0 &&
            out_channels % options.groups == 0,
        "Conv2d: groups ", options.groups, " must divide in_channels ", in_channels,
        " and out_channels ", out_channels);
  register_parameter(
      "weight", weight,
      empty({out_channels, in_channels / options.groups, kernel_size.h, kernel_size.w},
            options.dtype));
  init::kaiming_uniform_(weight, std::sqrt(5.0));  // torch's _ConvNd.reset_parameters
  if (options.bias) {
    register_parameter("bias", bias, empty({out_channels}, options.dtype));
    const double fan_in = init::fans(weight).first;
    const double bound = 1.0 / std::sqrt(fan_in);
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, options_.stride, options_.padding, options_.dilation,
                options_.groups);
}

}  // namespace xgrad::nn
