// Pooling layers over NCHW tensors (torch.nn.MaxPool2d, AvgPool2d, AdaptiveAvgPool2d). They
// hold no parameters; see ops/pool.hpp for shapes, the max-pool tie rule and errors.
#pragma once

#include <optional>

#include "xgrad/nn/module.hpp"
#include "xgrad/ops/pool.hpp"

namespace xgrad::nn {

/// Options of MaxPool2d and AvgPool2d: stride (default: the kernel size, as torch) and
/// zero padding (at most half the kernel).
struct Pool2dOptions {
  std::optional<Size2> stride;
  Size2 padding = 0;
};

/// Max pooling: forward(x) = max_pool2d(x, kernel, stride, padding); [N, C, H, W] ->
/// [N, C, OH, OW]. Throws xgrad::Error naming "MaxPool2d" for a kernel size < 1.
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Size2 kernel_size, Pool2dOptions options = {});
  std::string type_name() const override { return "MaxPool2d"; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  Size2 kernel_, stride_, padding_;
};

/// Average pooling, zero padding counted in the divisor (count_include_pad = true):
/// forward(x) = avg_pool2d(x, kernel, stride, padding). Throws xgrad::Error naming
/// "AvgPool2d" for a kernel size < 1.
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Size2 kernel_size, Pool2dOptions options = {});
  std::string type_name() const override { return "AvgPool2d"; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  Size2 kernel_, stride_, padding_;
};

/// Adaptive average pooling to a fixed output size: forward(x) =
/// adaptive_avg_pool2d(x, output_size); [N, C, H, W] -> [N, C, OH, OW].
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size);
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  Size2 output_size_;
};

}  // namespace xgrad::nn
