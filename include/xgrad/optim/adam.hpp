// Adam (Kingma & Ba 2015), with L2 weight decay and AMSGrad (Reddi et al. 2018).
#pragma once

#include "xgrad/optim/optimizer.hpp"

namespace xgrad::optim {

struct AdamOptions {
  explicit AdamOptions(double lr = 1e-3) : lr_(lr) {}
  AdamOptions& lr(double v) { return lr_ = v, *this; }
  AdamOptions& betas(double b1, double b2) { return beta1_ = b1, beta2_ = b2, *this; }
  AdamOptions& eps(double v) { return eps_ = v, *this; }
  AdamOptions& weight_decay(double v) { return weight_decay_ = v, *this; }
  AdamOptions& amsgrad(bool v) { return amsgrad_ = v, *this; }
  double lr_, beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8, weight_decay_ = 0;
  bool amsgrad_ = false;
  /// Validates and converts to group options; errors name `optimizer` ("Adam: invalid lr ...").
  std::map<std::string, double> to_map(const char* optimizer = "Adam") const;
};

/// Adam as torch.optim.Adam (torch 1.13's _single_tensor_adam). Per parameter, at step t:
///   g ← g + λ·p                                   (weight_decay λ ≠ 0: L2, coupled)
///   m ← β₁·m + (1 − β₁)·g;   v ← β₂·v + (1 − β₂)·g²
///   v̂ ← max(v̂, v) with amsgrad, else v̂ = v
///   p ← p − (lr / (1 − β₁ᵗ)) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
/// Defaults as torch: lr 1e-3, betas (0.9, 0.999), eps 1e-8. Throws xgrad::Error for a
/// negative lr/eps/weight decay or betas outside [0, 1).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options);
  Adam(std::vector<ParamGroup> groups, AdamOptions defaults);
  void step() override;

 protected:
  /// decoupled = true gives AdamW's update.
  Adam(std::vector<ParamGroup> groups, std::map<std::string, double> defaults, bool decoupled);

 private:
  bool decoupled_ = false;
};

}  // namespace xgrad::optim
