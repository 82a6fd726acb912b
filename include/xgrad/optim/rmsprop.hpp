// RMSprop (Hinton, Lecture 6e of Neural Networks for Machine Learning, 2012).
#pragma once

#include "xgrad/optim/optimizer.hpp"

namespace xgrad::optim {

struct RMSpropOptions {
  explicit RMSpropOptions(double lr = 1e-2) : lr_(lr) {}
  RMSpropOptions& lr(double v) { return lr_ = v, *this; }
  RMSpropOptions& alpha(double v) { return alpha_ = v, *this; }
  RMSpropOptions& eps(double v) { return eps_ = v, *this; }
  RMSpropOptions& weight_decay(double v) { return weight_decay_ = v, *this; }
  RMSpropOptions& momentum(double v) { return momentum_ = v, *this; }
  RMSpropOptions& centered(bool v) { return centered_ = v, *this; }
  double lr_, alpha_ = 0.99, eps_ = 1e-8, weight_decay_ = 0, momentum_ = 0;
  bool centered_ = false;
  std::map<std::string, double> to_map() const;
};

/// RMSprop as torch.optim.RMSprop (torch 1.13's _single_tensor_rmsprop). Per parameter:
///   g ← g + λ·p                              (weight_decay λ ≠ 0)
///   v ← α·v + (1 − α)·g²
///   centered: ḡ ← α·ḡ + (1 − α)·g;  a ← √(v − ḡ²) + ε;  else a ← √v + ε
///   momentum μ > 0: b ← μ·b + g/a;  p ← p − lr·b;  else p ← p − lr·g/a
/// Defaults as torch: lr 1e-2, alpha 0.99, eps 1e-8. Throws xgrad::Error for negative values.
class RMSprop : public Optimizer {
 public:
  RMSprop(std::vector<Tensor> params, RMSpropOptions options);
  RMSprop(std::vector<ParamGroup> groups, RMSpropOptions defaults);
  void step() override;
};

}  // namespace xgrad::optim
