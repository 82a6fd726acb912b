// AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019).
#pragma once

#include "xgrad/optim/adam.hpp"

namespace xgrad::optim {

/// AdamW hyperparameters, set fluently as AdamOptions: AdamWOptions(1e-3).weight_decay(0.1).
/// The setters are redeclared so that they return AdamWOptions& (AdamOptions' return
/// AdamOptions&, which AdamW does not take), and errors name AdamW.
struct AdamWOptions : AdamOptions {
  explicit AdamWOptions(double lr = 1e-3) : AdamOptions(lr) { weight_decay_ = 1e-2; }
  AdamWOptions& lr(double v) { return AdamOptions::lr(v), *this; }
  AdamWOptions& betas(double b1, double b2) { return AdamOptions::betas(b1, b2), *this; }
  AdamWOptions& eps(double v) { return AdamOptions::eps(v), *this; }
  AdamWOptions& weight_decay(double v) { return AdamOptions::weight_decay(v), *this; }
  AdamWOptions& amsgrad(bool v) { return AdamOptions::amsgrad(v), *this; }
  std::map<std::string, double> to_map() const { return AdamOptions::to_map("AdamW"); }
};

/// AdamW as torch.optim.AdamW (torch 1.13's _single_tensor_adamw): first p ← p·(1 − lr·λ),
/// then Adam's update without weight decay in the gradient. Default weight decay 1e-2.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options);
  AdamW(std::vector<ParamGroup> groups, AdamWOptions defaults);
};

}  // namespace xgrad::optim
