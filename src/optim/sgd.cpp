#include "xgrad/optim/sgd.hpp"

#include <cmath>

#include "optim/update.hpp"
#include "xgrad/autograd/grad_mode.hpp"

namespace xgrad::optim {

std::map<std::string, double> SGDOptions::to_map() const {
  detail::check_nonnegative("SGD", "lr", lr_);
  detail::check_nonnegative("SGD", "momentum", momentum_);
  detail::check_nonnegative("SGD", "dampening", dampening_);
  detail::check_nonnegative("SGD", "weight_decay", weight_decay_);
  if (nesterov_ && (momentum_ <= 0 || dampening_ != 0))
    fail("SGD: nesterov momentum requires a momentum > 0 and zero dampening");
  return {{"lr", lr_},
          {"momentum", momentum_},
          {"dampening", dampening_},
          {"weight_decay", weight_decay_},
          {"nesterov", nesterov_ ? 1.0 : 0.0}};
}

SGD::SGD(std::vector<Tensor> params, SGDOptions options)
    : Optimizer({ParamGroup(std::move(params))}, options.to_map()) {}
SGD::SGD(std::vector<ParamGroup> groups, SGDOptions defaults)
    : Optimizer(std::move(groups), defaults.to_map()) {}

void SGD::step() {
  no_grad guard;
  for (auto& group : param_groups()) {
    const double lr = group.lr(), mu = group.option("momentum"), damp = group.option("dampening"),
                 wd = group.option("weight_decay");
    const bool nesterov = group.option("nesterov") != 0;
    for (auto& p : group.params) {
      if (!p.grad().defined()) continue;
      Tensor g = p.grad().contiguous();
      const bool first = mu != 0 && !has_state(p, "momentum_buffer");
      Tensor buf = mu != 0 ? state(p, "momentum_buffer", [&] { return zeros_like(p); }) : Tensor();
      dispatch_floating(p.dtype(), "SGD", [&]<class T>() {
        const T lr_ = T(lr), mu_ = T(mu), one_m_damp = T(1 - damp), wd_ = T(wd);
        T* pp = p.data_ptr<T>();
        const T* pg = g.data_ptr<T>();
        T* pb = buf.defined() ? buf.data_ptr<T>() : nullptr;
        const std::int64_t n = p.numel();
        for (std::int64_t i = 0; i < n; ++i) {
          T d = pg[i];
          if (wd != 0) d = std::fma(wd_, pp[i], d);  // d_p.add(param, alpha=wd)
          if (mu != 0) {
            // buf = clone(d_p) at the first step, else buf.mul_(mu).add_(d_p, alpha=1-damp)
            pb[i] = first ? d : std::fma(one_m_damp, d, pb[i] * mu_);
            d = nesterov ? std::fma(mu_, pb[i], d) : pb[i];
          }
          pp[i] = std::fma(-lr_, d, pp[i]);  // param.add_(d_p, alpha=-lr)
        }
      });
      detail::bump(p, buf);
    }
  }
}

}  // namespace xgrad::optim
