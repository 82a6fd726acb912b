// Conv2d: a 2-D convolution layer (torch.nn.Conv2d) over NCHW tensors.
#pragma once

#include "xgrad/nn/module.hpp"
#include "xgrad/ops/conv.hpp"

namespace xgrad::nn {

/// Options of Conv2d (torch.nn.Conv2d's keyword arguments, with its defaults).
struct Conv2dOptions {
  Size2 stride = 1;
  Size2 padding = 0;
  Size2 dilation = 1;
  std::int64_t groups = 1;
  bool bias = true;
  Dtype dtype = default_dtype();
};

/// 2-D convolution layer: forward(x) = conv2d(x, weight, bias, stride, padding, dilation,
/// groups) (see ops/conv.hpp; im2col + GEMM, Chellapilla et al. 2006).
///
/// weight [out, in/groups, kH, kW], bias [out] (absent when options.bias is false), both
/// initialised as torch's reset_parameters: weight from Kaiming-uniform with a = √5, i.e.
/// U(±1/√fan_in), bias from U(±1/√fan_in), fan_in = in/groups·kH·kW (He et al. 2015).
/// forward: x [N, in, H, W] -> [N, out, OH, OW].
///
/// Throws xgrad::Error naming "Conv2d" for non-positive channel counts or kernel sizes and for
/// groups that do not divide both channel counts; forward throws conv2d's errors.
class Conv2d : public Module {
 public:
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, Size2 kernel_size,
         Conv2dOptions options = {});
  Tensor weight, bias;
  const Conv2dOptions& options() const { return options_; }
  std::string type_name() const override { return "Conv2d"; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  Conv2dOptions options_;
};

}  // namespace xgrad::nn
