#include "xgrad/optim/rmsprop.hpp"

#include <cmath>

#include "detail/cpu.hpp"
#include "optim/update.hpp"

namespace xgrad::optim {

namespace {

template <class T>
struct RMSpropScalars {
  T lr, alpha, one_m_alpha, eps, wd, mu;
};

// One fused pass over a parameter in torch 1.13's operation order; the flags are template
// parameters so each variant is a branch-free loop GCC vectorises (sqrt and division included,
// thanks to -fno-math-errno). Compiled for the baseline here and for AVX2 + FMA in
// rmsprop_update_avx2 (detail/cpu.hpp).
template <class T, bool Wd, bool Centered, bool Momentum>
[[gnu::always_inline]] inline void rmsprop_update(T* __restrict pp, const T* __restrict pg,
                                                  T* __restrict ps, T* __restrict pa,
                                                  T* __restrict pb, std::int64_t n,
                                                  const RMSpropScalars<T> k) {
  for (std::int64_t i = 0; i < n; ++i) {
    T d = pg[i];
    if constexpr (Wd) d = std::fma(k.wd, pp[i], d);  // grad.add(param, alpha=wd)
    // square_avg.mul_(alpha).addcmul_(grad, grad, value=1-alpha)
    const T s = std::fma(k.one_m_alpha * d, d, ps[i] * k.alpha);
    ps[i] = s;
    T avg;
    if constexpr (Centered) {
      const T a = std::fma(k.one_m_alpha, d, pa[i] * k.alpha);  // grad_avg.mul_(a).add_(g, 1-a)
      pa[i] = a;
      avg = std::sqrt(std::fma(T(-1) * a, a, s));  // square_avg.addcmul(ga, ga, -1).sqrt_()
    } else {
      avg = std::sqrt(s);
    }
    avg = avg + k.eps;
    if constexpr (Momentum) {
      const T b = pb[i] * k.mu + (T(1) * d) / avg;  // buf.mul_(mu).addcdiv_(grad, avg)
      pb[i] = b;
      pp[i] = std::fma(-k.lr, b, pp[i]);  // param.add_(buf, alpha=-lr)
    } else {
      pp[i] = pp[i] + (-k.lr * d) / avg;  // param.addcdiv_(grad, avg, value=-lr)
    }
  }
}

template <class T, bool Wd, bool Centered, bool Momentum>
XGRAD_TARGET_AVX2 void rmsprop_update_avx2(T* __restrict pp, const T* __restrict pg,
                                           T* __restrict ps, T* __restrict pa, T* __restrict pb,
                                           std::int64_t n, const RMSpropScalars<T> k) {
  rmsprop_update<T, Wd, Centered, Momentum>(pp, pg, ps, pa, pb, n, k);
}

}  // namespace

std::map<std::string, double> RMSpropOptions::to_map() const {
  return detail::options_map("RMSprop",
                             {{"lr", lr_},
                              {"alpha", alpha_},
                              {"eps", eps_},
                              {"weight_decay", weight_decay_},
                              {"momentum", momentum_}},
                             {{"centered", centered_}});
}

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options)
    : Optimizer({ParamGroup(std::move(params))}, options.to_map()) {}
RMSprop::RMSprop(std::vector<ParamGroup> groups, RMSpropOptions defaults)
    : Optimizer(std::move(groups), defaults.to_map()) {}

void RMSprop::step() {
  detail::for_each_param(param_groups(), [&](const ParamGroup& group) {
    const double lr = group.lr(), alpha = group.option("alpha"), eps = group.option("eps"),
                 wd = group.option("weight_decay"), mu = group.option("momentum");
    const bool centered = group.option("centered") != 0;
    return [=, this](Tensor& p, const Tensor& g) -> detail::Written {
      step_count(p) += 1;
      Tensor sq = zero_state(p, "square_avg");
      Tensor ga = centered ? zero_state(p, "grad_avg") : Tensor();
      Tensor buf = mu > 0 ? zero_state(p, "momentum_buffer") : Tensor();
      dispatch_floating(p.dtype(), "RMSprop", [&]<class T>() {
        const RMSpropScalars<T> k{T(lr), T(alpha), T(1 - alpha), T(eps), T(wd), T(mu)};
        T* pa = ga.defined() ? ga.data_ptr<T>() : nullptr;
        T* pb = buf.defined() ? buf.data_ptr<T>() : nullptr;
        auto run = [&]<bool Wd, bool Centered, bool Momentum>() {
          T *pp = p.data_ptr<T>(), *ps = sq.data_ptr<T>();
          const T* pg = g.data_ptr<T>();
          const bool avx2 = ::xgrad::detail::use_avx2();
          detail::split_update(p.numel(), [&](std::int64_t o, std::int64_t n) {
            T* pao = pa != nullptr ? pa + o : nullptr;
            T* pbo = pb != nullptr ? pb + o : nullptr;
            if (avx2)
              rmsprop_update_avx2<T, Wd, Centered, Momentum>(pp + o, pg + o, ps + o, pao, pbo, n,
                                                             k);
            else
              rmsprop_update<T, Wd, Centered, Momentum>(pp + o, pg + o, ps + o, pao, pbo, n, k);
          });
        };
        // The eight flag combinations, each a branch-free loop.
        auto with_momentum = [&]<bool Wd, bool Centered>() {
          mu > 0 ? run.template operator()<Wd, Centered, true>()
                 : run.template operator()<Wd, Centered, false>();
        };
        auto with_centered = [&]<bool Wd>() {
          centered ? with_momentum.template operator()<Wd, true>()
                   : with_momentum.template operator()<Wd, false>();
        };
        wd != 0 ? with_centered.template operator()<true>()
                : with_centered.template operator()<false>();
      });
      return {sq, ga, buf};
    };
  });
}

}  // namespace xgrad::optim
