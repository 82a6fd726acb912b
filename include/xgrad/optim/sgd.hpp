// Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay.
#pragma once

#include "xgrad/optim/optimizer.hpp"

namespace xgrad::optim {

/// SGD hyperparameters (torch names), set fluently: SGDOptions(0.1).momentum(0.9).
struct SGDOptions {
  explicit SGDOptions(double lr = 1e-3) : lr_(lr) {}
  SGDOptions& lr(double v) { return lr_ = v, *this; }
  SGDOptions& momentum(double v) { return momentum_ = v, *this; }
  SGDOptions& dampening(double v) { return dampening_ = v, *this; }
  SGDOptions& weight_decay(double v) { return weight_decay_ = v, *this; }
  SGDOptions& nesterov(bool v) { return nesterov_ = v, *this; }
  double lr_, momentum_ = 0, dampening_ = 0, weight_decay_ = 0;
  bool nesterov_ = false;
  std::map<std::string, double> to_map() const;
};

/// Gradient descent as torch.optim.SGD (torch 1.13's _single_tensor_sgd, operation by
/// operation; Sutskever et al. 2013 for momentum and Nesterov). For each parameter p with
/// gradient g, at step t:
///   g ← g + λ·p                                  (weight_decay λ ≠ 0)
///   b ← g at t = 1, else μ·b + (1 − τ)·g         (momentum μ ≠ 0, dampening τ)
///   g ← g + μ·b if nesterov, else b              (momentum μ ≠ 0)
///   p ← p − lr·g
/// With momentum 0 this is plain ("vanilla") gradient descent; the DataLoader's batch size
/// makes it batch, mini-batch or stochastic. Throws xgrad::Error for a negative lr,
/// momentum, dampening or weight decay, and for nesterov without momentum or with dampening.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options);
  SGD(std::vector<ParamGroup> groups, SGDOptions defaults);
  void step() override;
};

}  // namespace xgrad::optim
