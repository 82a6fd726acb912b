#include "xgrad/nn/pool.hpp"

namespace xgrad::nn {

MaxPool2d::MaxPool2d(Size2 kernel_size, Pool2dOptions options)
    : kernel_(kernel_size),
      stride_(options.stride.value_or(kernel_size)),
      padding_(options.padding) {
  check(kernel_size.h > 0 && kernel_size.w > 0, "MaxPool2d: kernel size must be positive, got ",
        kernel_size.h, "x", kernel_size.w);
}

Tensor MaxPool2d::forward(const Tensor& x) {
  return max_pool2d(x, kernel_, stride_, padding_);
}

AvgPool2d::AvgPool2d(Size2 kernel_size, Pool2dOptions options)
    : kernel_(kernel_size),
      stride_(options.stride.value_or(kernel_size)),
      padding_(options.padding) {
  check(kernel_size.h > 0 && kernel_size.w > 0, "AvgPool2d: kernel size must be positive, got ",
        kernel_size.h, "x", kernel_size.w);
}

Tensor AvgPool2d::forward(const Tensor& x) {
  return avg_pool2d(x, kernel_, stride_, padding_);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 output_size) : output_size_(output_size) {}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  return adaptive_avg_pool2d(x, output_size_);
}

}  // namespace xgrad::nn
