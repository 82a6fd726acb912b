#include "xgrad/optim/rmsprop.hpp"

#include <cmath>

#include "optim/update.hpp"
#include "xgrad/autograd/grad_mode.hpp"

namespace xgrad::optim {

std::map<std::string, double> RMSpropOptions::to_map() const {
  detail::check_nonnegative("RMSprop", "lr", lr_);
  detail::check_nonnegative("RMSprop", "alpha", alpha_);
  detail::check_nonnegative("RMSprop", "eps", eps_);
  detail::check_nonnegative("RMSprop", "weight_decay", weight_decay_);
  detail::check_nonnegative("RMSprop", "momentum", momentum_);
  return {{"lr", lr_},
          {"alpha", alpha_},
          {"eps", eps_},
          {"weight_decay", weight_decay_},
          {"momentum", momentum_},
          {"centered", centered_ ? 1.0 : 0.0}};
}

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options)
    : Optimizer({ParamGroup(std::move(params))}, options.to_map()) {}
RMSprop::RMSprop(std::vector<ParamGroup> groups, RMSpropOptions defaults)
    : Optimizer(std::move(groups), defaults.to_map()) {}

void RMSprop::step() {
  no_grad guard;
  for (auto& group : param_groups()) {
    const double lr = group.lr(), alpha = group.option("alpha"), eps = group.option("eps"),
                 wd = group.option("weight_decay"), mu = group.option("momentum");
    const bool centered = group.option("centered") != 0;
    for (auto& p : group.params) {
      if (!p.grad().defined()) continue;
      Tensor g = p.grad().contiguous();
      step_count(p) += 1;
      Tensor sq = state(p, "square_avg", [&] { return zeros_like(p); });
      Tensor ga = centered ? state(p, "grad_avg", [&] { return zeros_like(p); }) : Tensor();
      Tensor buf = mu > 0 ? state(p, "momentum_buffer", [&] { return zeros_like(p); }) : Tensor();
      dispatch_floating(p.dtype(), "RMSprop", [&]<class T>() {
        const T lr_ = T(lr), alpha_ = T(alpha), one_m_alpha = T(1 - alpha), eps_ = T(eps),
                wd_ = T(wd), mu_ = T(mu);
        T* pp = p.data_ptr<T>();
        const T* pg = g.data_ptr<T>();
        T* ps = sq.data_ptr<T>();
        T* pa = ga.defined() ? ga.data_ptr<T>() : nullptr;
        T* pb = buf.defined() ? buf.data_ptr<T>() : nullptr;
        for (std::int64_t i = 0, n = p.numel(); i < n; ++i) {
          T d = pg[i];
          if (wd != 0) d = std::fma(wd_, pp[i], d);  // grad.add(param, alpha=wd)
          // square_avg.mul_(alpha).addcmul_(grad, grad, value=1-alpha)
          ps[i] = std::fma(one_m_alpha * d, d, ps[i] * alpha_);
          T avg;
          if (centered) {
            pa[i] = std::fma(one_m_alpha, d, pa[i] * alpha_);  // grad_avg.mul_(a).add_(g, 1-a)
            avg = std::sqrt(std::fma(T(-1) * pa[i], pa[i], ps[i]));  // addcmul(ga, ga, -1).sqrt_()
          } else {
            avg = std::sqrt(ps[i]);
          }
          avg = avg + eps_;
          if (mu > 0) {
            pb[i] = pb[i] * mu_ + (T(1) * d) / avg;  // buf.mul_(mu).addcdiv_(grad, avg)
            pp[i] = std::fma(-lr_, pb[i], pp[i]);    // param.add_(buf, alpha=-lr)
          } else {
            pp[i] = pp[i] + (-lr_ * d) / avg;  // param.addcdiv_(grad, avg, value=-lr)
          }
        }
      });
      detail::bump(p, sq, ga, buf);
    }
  }
}

}  // namespace xgrad::optim
