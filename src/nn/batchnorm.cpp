#include "xgrad/nn/batchnorm.hpp"

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/ops/normalization.hpp"

namespace xgrad::nn {

BatchNorm::BatchNorm(std::int64_t num_features, BatchNormOptions options)
    : num_features_(num_features), options_(options) {
  check(num_features > 0, "BatchNorm: num_features must be positive, got ", num_features);
  check(is_floating(options.dtype), "BatchNorm: dtype must be float32 or float64, got ",
        dtype_name(options.dtype));
  if (options.affine) {
    register_parameter("weight", weight, ones({num_features}, options.dtype));
    register_parameter("bias", bias, zeros({num_features}, options.dtype));
  }
  if (options.track_running_stats) {
    register_buffer("running_mean", running_mean, zeros({num_features}, options.dtype));
    register_buffer("running_var", running_var, ones({num_features}, options.dtype));
    register_buffer("num_batches_tracked", num_batches_tracked, zeros({}, Dtype::int64));
  }
}

void BatchNorm::reset_running_stats() {
  if (!running_mean.defined()) return;
  no_grad guard;
  running_mean.zero_();
  running_var.fill_(1.0);
  num_batches_tracked.zero_();
}

Tensor BatchNorm::forward(const Tensor& x) {
  check_input(x);
  check(x.size(1) == num_features_, type_name(), ": expected ", num_features_,
        " channels (num_features), got input of shape ", x.shape());
  const bool tracking = running_mean.defined();
  // Without running statistics, batch statistics are used in evaluation too (as torch).
  Tensor y = batch_norm(x, running_mean, running_var, weight, bias, is_training() || !tracking,
                        options_.momentum, options_.eps);
  if (is_training() && tracking) {
    num_batches_tracked.data_ptr<std::int64_t>()[0] += 1;
    num_batches_tracked.storage()->bump_version();
  }
  return y;
}

BatchNorm1d::BatchNorm1d(std::int64_t num_features, BatchNormOptions options)
    : BatchNorm(num_features, options) {}

void BatchNorm1d::check_input(const Tensor& x) const {
  check(x.dim() == 2 || x.dim() == 3, "BatchNorm1d: expected 2D or 3D input, got shape ",
        x.shape());
}

BatchNorm2d::BatchNorm2d(std::int64_t num_features, BatchNormOptions options)
    : BatchNorm(num_features, options) {}

void BatchNorm2d::check_input(const Tensor& x) const {
  check(x.dim() == 4, "BatchNorm2d: expected 4D input, got shape ", x.shape());
}

}  // namespace xgrad::nn
