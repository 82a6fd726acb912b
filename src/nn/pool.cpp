#include "xgrad/nn/pool.hpp"

namespace xgrad::nn {

namespace {
Size2 checked_kernel(const char* module, Size2 k) {
  check(k.h > 0 && k.w > 0, module, ": kernel size must be positive, got ", k);
  return k;
}
}  // namespace

MaxPool2d::MaxPool2d(Size2 kernel_size, Pool2dOptions options)
    : kernel_(checked_kernel("MaxPool2d", kernel_size)),
      stride_(options.stride.value_or(kernel_size)),
      padding_(options.padding) {}

Tensor MaxPool2d::forward(const Tensor& x) {
  return max_pool2d(x, kernel_, stride_, padding_);
}

AvgPool2d::AvgPool2d(Size2 kernel_size, Pool2dOptions options)
    : kernel_(checked_kernel("AvgPool2d", kernel_size)),
      stride_(options.stride.value_or(kernel_size)),
      padding_(options.padding) {}

Tensor AvgPool2d::forward(const Tensor& x) {
  return avg_pool2d(x, kernel_, stride_, padding_);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 output_size) : output_size_(output_size) {}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  return adaptive_avg_pool2d(x, output_size_);
}

}  // namespace xgrad::nn
