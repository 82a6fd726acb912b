// Adam and AdamW share one fused update loop; `decoupled` selects AdamW's weight decay.
#include "xgrad/optim/adam.hpp"

#include <cmath>

#include "detail/cpu.hpp"
#include "optim/update.hpp"
#include "xgrad/optim/adamw.hpp"

namespace xgrad::optim {

namespace {

template <class T>
struct AdamScalars {
  T b1, b2, one_m_b1, one_m_b2, eps, wd, decay, neg_step, bc2s;
};

// One fused pass over a parameter, in torch 1.13's operation order (see adam.hpp). The flags
// are template parameters so that each variant is a branch-free loop GCC can vectorise;
// __restrict tells it the five buffers do not overlap. Compiled twice (detail/cpu.hpp): here for
// the baseline and in adam_update_avx2 for AVX2 + FMA, chosen per call.
template <class T, bool Decoupled, bool Wd, bool Ams>
[[gnu::always_inline]] inline void adam_update(T* __restrict pp, const T* __restrict pg,
                                               T* __restrict pm, T* __restrict pv, T* __restrict px,
                                               std::int64_t n, const AdamScalars<T> k) {
  for (std::int64_t i = 0; i < n; ++i) {
    T d = pg[i];
    T p = pp[i];
    if constexpr (Decoupled) p = p * k.decay;           // param.mul_(1 - lr*wd)
    if constexpr (Wd) d = std::fma(k.wd, p, d);         // grad.add(param, alpha=wd)
    const T m = std::fma(k.one_m_b1, d, pm[i] * k.b1);  // exp_avg.mul_(b1).add_(g, 1-b1)
    const T v =
        std::fma(k.one_m_b2 * d, d, pv[i] * k.b2);  // exp_avg_sq.mul_(b2).addcmul_(g,g,1-b2)
    pm[i] = m;
    pv[i] = v;
    T s = v;
    if constexpr (Ams) {
      const T x = px[i];
      s = (x < v || v != v) ? v : x;  // torch.maximum(max_exp_avg_sq, exp_avg_sq)
      px[i] = s;
    }
    const T denom = std::sqrt(s) / k.bc2s + k.eps;  // (v.sqrt() / bc2_sqrt).add_(eps)
    pp[i] = p + (k.neg_step * m) / denom;           // param.addcdiv_(m, denom, value=-step_size)
  }
}

template <class T, bool Decoupled, bool Wd, bool Ams>
XGRAD_TARGET_AVX2 void adam_update_avx2(T* __restrict pp, const T* __restrict pg, T* __restrict pm,
                                        T* __restrict pv, T* __restrict px, std::int64_t n,
                                        const AdamScalars<T> k) {
  adam_update<T, Decoupled, Wd, Ams>(pp, pg, pm, pv, px, n, k);
}

}  // namespace

std::map<std::string, double> AdamOptions::to_map(const char* optimizer) const {
  auto options =
      detail::options_map(optimizer, {{"lr", lr_}, {"eps", eps_}, {"weight_decay", weight_decay_}},
                          {{"amsgrad", amsgrad_}});
  check(beta1_ >= 0 && beta1_ < 1, optimizer, ": invalid beta1 ", beta1_, " (must be in [0, 1))");
  check(beta2_ >= 0 && beta2_ < 1, optimizer, ": invalid beta2 ", beta2_, " (must be in [0, 1))");
  options["beta1"] = beta1_;
  options["beta2"] = beta2_;
  return options;
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
  detail::for_each_param(param_groups(), [&](const ParamGroup& group) {
    const double lr = group.lr(), beta1 = group.option("beta1"), beta2 = group.option("beta2"),
                 eps = group.option("eps"), wd = group.option("weight_decay");
    const bool amsgrad = group.option("amsgrad") != 0;
    return [=, this](Tensor& p, const Tensor& g) -> detail::Written {
      const double step = (step_count(p) += 1);
      Tensor m = zero_state(p, "exp_avg");
      Tensor v = zero_state(p, "exp_avg_sq");
      Tensor vmax = amsgrad ? zero_state(p, "max_exp_avg_sq") : Tensor();
      // Scalars in float64, as Python computes them in torch.optim.
      const double bias_correction1 = 1 - std::pow(beta1, step);
      const double bias_correction2 = 1 - std::pow(beta2, step);
      const double step_size = lr / bias_correction1;
      const double bias_correction2_sqrt = std::sqrt(bias_correction2);
      dispatch_floating(p.dtype(), decoupled_ ? "AdamW" : "Adam", [&]<class T>() {
        const AdamScalars<T> k{T(beta1),       T(beta2),      T(1 - beta1),
                               T(1 - beta2),   T(eps),        T(wd),
                               T(1 - lr * wd), T(-step_size), T(bias_correction2_sqrt)};
        T* px = vmax.defined() ? vmax.data_ptr<T>() : nullptr;
        auto run = [&]<bool Decoupled, bool Wd, bool Ams>() {
          T *pp = p.data_ptr<T>(), *pm = m.data_ptr<T>(), *pv = v.data_ptr<T>();
          const T* pg = g.data_ptr<T>();
          const bool avx2 = ::xgrad::detail::use_avx2();
          detail::split_update(p.numel(), [&](std::int64_t o, std::int64_t n) {
            T* pxo = px != nullptr ? px + o : nullptr;
            if (avx2)
              adam_update_avx2<T, Decoupled, Wd, Ams>(pp + o, pg + o, pm + o, pv + o, pxo, n, k);
            else
              adam_update<T, Decoupled, Wd, Ams>(pp + o, pg + o, pm + o, pv + o, pxo, n, k);
          });
        };
        if (decoupled_) {
          amsgrad ? run.template operator()<true, false, true>()
                  : run.template operator()<true, false, false>();
        } else if (wd != 0) {
          amsgrad ? run.template operator()<false, true, true>()
                  : run.template operator()<false, true, false>();
        } else {
          amsgrad ? run.template operator()<false, false, true>()
                  : run.template operator()<false, false, false>();
        }
      });
      return {m, v, vmax};
    };
  });
}

}  // namespace xgrad::optim
