// AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019).
#pragma once

#include "xgrad/optim/adam.hpp"

namespace xgrad::optim {

struct AdamWOptions : AdamOptions {
  explicit AdamWOptions(double lr = 1e-3) : AdamOptions(lr) { weight_decay_ = 1e-2; }
};

/// AdamW as torch.optim.AdamW (torch 1.13's _single_tensor_adamw): first p ← p·(1 − lr·λ),
/// then Adam's update without weight decay in the gradient. Default weight decay 1e-2.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options);
  AdamW(std::vector<ParamGroup> groups, AdamWOptions defaults);
};

}  // namespace xgrad::optim
