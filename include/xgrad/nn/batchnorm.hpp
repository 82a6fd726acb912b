// Batch normalisation layers: BatchNorm1d ([N, C] or [N, C, L]) and BatchNorm2d ([N, C, H, W]).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  /// Weight of the current batch in the running statistics' update.
  double momentum = 0.1;
  /// Learn a per-channel scale (weight, ones) and shift (bias, zeros).
  bool affine = true;
  /// Keep running statistics for evaluation. Without them batch statistics are used in both
  /// modes, as torch does.
  bool track_running_stats = true;
  Dtype dtype = default_dtype();
};

/// What BatchNorm1d and BatchNorm2d share (torch's _BatchNorm). In training mode forward
/// normalises with the batch's statistics and updates running_mean / running_var (unbiased
/// variance) and num_batches_tracked; after eval() it normalises with the running statistics.
/// See xgrad::batch_norm (ops/normalization.hpp) for the formulas.
///
/// running_mean (zeros), running_var (ones), both [C], and num_batches_tracked (int64, 0-d)
/// are buffers (Module::register_buffer), registered in that order as torch does: state that is
/// not learned, so they are not in parameters() and never require grad; named_buffers() lists
/// them and state_dict() holds them ("running_mean", ..., after "weight" and "bias"), so that
/// io::save, io::load and checkpoints carry them.
class BatchNorm : public Module {
 public:
  Tensor weight, bias;               // [C] parameters, undefined unless affine
  Tensor running_mean, running_var;  // [C] buffers, undefined unless track_running_stats
  Tensor num_batches_tracked;        // int64 0-d buffer, undefined unless track_running_stats

  std::int64_t num_features() const { return num_features_; }
  const BatchNormOptions& options() const { return options_; }
  /// Running mean 0, running variance 1, num_batches_tracked 0 (in place).
  void reset_running_stats();

 protected:
  BatchNorm(std::int64_t num_features, BatchNormOptions options);
  Tensor forward(const Tensor& x) override;
  /// Throws unless x has a shape this layer accepts.
  virtual void check_input(const Tensor& x) const = 0;

 private:
  std::int64_t num_features_;
  BatchNormOptions options_;
};

/// torch.nn.BatchNorm1d. forward: x [N, C] or [N, C, L] -> same shape; statistics per channel
/// over N (and L). Throws xgrad::Error for another rank ("BatchNorm1d: expected 2D or 3D input,
/// got shape [2,3,4,5]"), C != num_features, or a training batch with one value per channel.
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(std::int64_t num_features, BatchNormOptions options = {});
  std::string type_name() const override { return "BatchNorm1d"; }

 protected:
  void check_input(const Tensor& x) const override;
};

/// torch.nn.BatchNorm2d. forward: x [N, C, H, W] -> same shape; statistics per channel over
/// N, H and W. Throws xgrad::Error for another rank, C != num_features, or a training batch with
/// one value per channel.
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(std::int64_t num_features, BatchNormOptions options = {});
  std::string type_name() const override { return "BatchNorm2d"; }

 protected:
  void check_input(const Tensor& x) const override;
};

}  // namespace xgrad::nn
