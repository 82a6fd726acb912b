// Adagrad (Duchi, Hazan & Singer 2011) written on the public xgrad::optim::Optimizer interface,
// as torch.optim.Adagrad with lr_decay = weight_decay = initial_accumulator_value = 0:
//   sum ← sum + g²;   p ← p − lr · g / (√sum + ε)
#pragma once

#include "xgrad/optim/optimizer.hpp"
#include "xgrad/xgrad.hpp"

namespace example {

class Adagrad : public xgrad::optim::Optimizer {
 public:
  explicit Adagrad(std::vector<xgrad::Tensor> params, double lr = 1e-2, double eps = 1e-10)
      : Optimizer({xgrad::optim::ParamGroup(std::move(params))}, {{"lr", lr}, {"eps", eps}}) {
    xgrad::check(lr >= 0, "Adagrad: invalid lr ", lr, " (must be >= 0)");
    xgrad::check(eps >= 0, "Adagrad: invalid eps ", eps, " (must be >= 0)");
  }

  void step() override {
    xgrad::no_grad guard;  // parameter updates are not part of any graph
    for (auto& group : param_groups()) {
      const double lr = group.lr(), eps = group.option("eps");
      for (auto& p : group.params) {
        if (!p.grad().defined()) continue;  // no gradient: leave p and its state alone
        const xgrad::Tensor g = p.grad();
        step_count(p) += 1;  // torch's state['step'], saved by state_dict()
        xgrad::Tensor& sum = state(p, "sum", [&] { return xgrad::zeros_like(p); });
        sum.addcmul_(g, g);                        // state_sum.addcmul_(grad, grad, value=1)
        xgrad::Tensor std = sum.sqrt().add_(eps);  // std = state_sum.sqrt().add_(eps)
        p.addcdiv_(g, std, -lr);                   // param.addcdiv_(grad, std, value=-clr)
      }
    }
  }
};

}  // namespace example
