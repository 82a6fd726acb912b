// Adam and AdamW share one fused update loop; `decoupled` selects AdamW's weight decay.
#include "xgrad/optim/adam.hpp"

#include <cmath>

#include "optim/update.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/optim/adamw.hpp"

namespace xgrad::optim {

std::map<std::string, double> AdamOptions::to_map() const {
  detail::check_nonnegative("Adam", "lr", lr_);
  detail::check_nonnegative("Adam", "eps", eps_);
  detail::check_nonnegative("Adam", "weight_decay", weight_decay_);
  check(beta1_ >= 0 && beta1_ < 1, "Adam: invalid beta1 ", beta1_, " (must be in [0, 1))");
  check(beta2_ >= 0 && beta2_ < 1, "Adam: invalid beta2 ", beta2_, " (must be in [0, 1))");
  return {{"lr", lr_},   {"beta1", beta1_},
          {"beta2", beta2_}, {"eps", eps_},
          {"weight_decay", weight_decay_}, {"amsgrad", amsgrad_ ? 1.0 : 0.0}};
}

Adam::Adam(std::vector<Tensor> params, AdamOptions options)
    : Adam({ParamGroup(std::move(params))}, options.to_map(), false) {}
Adam::Adam(std::vector<ParamGroup> groups, AdamOptions defaults)
    : Adam(std::move(groups), defaults.to_map(), false) {}
Adam::Adam(std::vector<ParamGroup> groups, std::map<std::string, double> defaults, bool decoupled)
    : Optimizer(std::move(groups), std::move(defaults)), decoupled_(decoupled) {}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options)
    : Adam({ParamGroup(std::move(params))}, options.to_map(), true) {}
AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions defaults)
    : Adam(std::move(groups), defaults.to_map(), true) {}

void Adam::step() {
  no_grad guard;
  for (auto& group : param_groups()) {
    const double lr = group.lr(), beta1 = group.option("beta1"), beta2 = group.option("beta2"),
                 eps = group.option("eps"), wd = group.option("weight_decay");
    const bool amsgrad = group.option("amsgrad") != 0;
    for (auto& p : group.params) {
      if (!p.grad().defined()) continue;
      Tensor g = p.grad().contiguous();
      const double step = (step_count(p) += 1);
      Tensor m = state(p, "exp_avg", [&] { return zeros_like(p); });
      Tensor v = state(p, "exp_avg_sq", [&] { return zeros_like(p); });
      Tensor vmax = amsgrad ? state(p, "max_exp_avg_sq", [&] { return zeros_like(p); }) : Tensor();
      // Scalars in float64, as Python computes them in torch.optim.
      const double bias_correction1 = 1 - std::pow(beta1, step);
      const double bias_correction2 = 1 - std::pow(beta2, step);
      const double step_size = lr / bias_correction1;
      const double bias_correction2_sqrt = std::sqrt(bias_correction2);
      const bool decoupled = decoupled_;
      dispatch_floating(p.dtype(), decoupled ? "AdamW" : "Adam", [&]<class T>() {
        const T b1 = T(beta1), b2 = T(beta2), one_m_b1 = T(1 - beta1), one_m_b2 = T(1 - beta2),
                eps_ = T(eps), wd_ = T(wd), decay = T(1 - lr * wd), neg_step = T(-step_size),
                bc2s = T(bias_correction2_sqrt);
        T* pp = p.data_ptr<T>();
        const T* pg = g.data_ptr<T>();
        T* pm = m.data_ptr<T>();
        T* pv = v.data_ptr<T>();
        T* px = vmax.defined() ? vmax.data_ptr<T>() : nullptr;
        for (std::int64_t i = 0, n = p.numel(); i < n; ++i) {
          T d = pg[i];
          if (decoupled) {
            pp[i] = pp[i] * decay;  // param.mul_(1 - lr*wd)
          } else if (wd != 0) {
            d = std::fma(wd_, pp[i], d);  // grad.add(param, alpha=wd)
          }
          pm[i] = std::fma(one_m_b1, d, pm[i] * b1);       // exp_avg.mul_(b1).add_(g, 1-b1)
          pv[i] = std::fma(one_m_b2 * d, d, pv[i] * b2);   // exp_avg_sq.mul_(b2).addcmul_(g,g,1-b2)
          T s = pv[i];
          if (amsgrad) {
            px[i] = (px[i] < s || std::isnan(s)) ? s : px[i];  // torch.maximum(max, v, out=max)
            s = px[i];
          }
          const T denom = std::sqrt(s) / bc2s + eps_;  // (v.sqrt() / bc2_sqrt).add_(eps)
          pp[i] = pp[i] + (neg_step * pm[i]) / denom;   // param.addcdiv_(m, denom, -step_size)
        }
      });
      detail::bump(p, m, v, vmax);
    }
  }
}

}  // namespace xgrad::optim
