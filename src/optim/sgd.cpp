#include "xgrad/optim/sgd.hpp"

#include <cmath>

#include "detail/cpu.hpp"
#include "optim/update.hpp"

namespace xgrad::optim {

namespace {

template <class T>
struct SGDScalars {
  T lr, mu, one_m_damp, wd;
};

// One fused pass over a parameter in torch 1.13's operation order, a branch-free loop per flag
// combination (`first`, the momentum buffer's first step, is the same for the whole loop).
// Compiled for the baseline here and for AVX2 + FMA in sgd_update_avx2 (detail/cpu.hpp).
template <class T, bool Wd, bool Momentum, bool Nesterov>
[[gnu::always_inline]] inline void sgd_update(T* __restrict pp, const T* __restrict pg,
                                              T* __restrict pb, std::int64_t n, bool first,
                                              const SGDScalars<T> k) {
  for (std::int64_t i = 0; i < n; ++i) {
    T d = pg[i];
    if constexpr (Wd) d = std::fma(k.wd, pp[i], d);  // d_p.add(param, alpha=wd)
    if constexpr (Momentum) {
      // buf = clone(d_p) at the first step, else buf.mul_(mu).add_(d_p, alpha=1-damp)
      const T b = first ? d : std::fma(k.one_m_damp, d, pb[i] * k.mu);
      pb[i] = b;
      d = Nesterov ? std::fma(k.mu, b, d) : b;
    }
    pp[i] = std::fma(-k.lr, d, pp[i]);  // param.add_(d_p, alpha=-lr)
  }
}

template <class T, bool Wd, bool Momentum, bool Nesterov>
XGRAD_TARGET_AVX2 void sgd_update_avx2(T* __restrict pp, const T* __restrict pg, T* __restrict pb,
                                       std::int64_t n, bool first, const SGDScalars<T> k) {
  sgd_update<T, Wd, Momentum, Nesterov>(pp, pg, pb, n, first, k);
}

}  // namespace

std::map<std::string, double> SGDOptions::to_map() const {
  auto options = detail::options_map("SGD",
                                     {{"lr", lr_},
                                      {"momentum", momentum_},
                                      {"dampening", dampening_},
                                      {"weight_decay", weight_decay_}},
                                     {{"nesterov", nesterov_}});
  if (nesterov_ && (momentum_ <= 0 || dampening_ != 0))
    fail("SGD: nesterov momentum requires a momentum > 0 and zero dampening");
  return options;
}

SGD::SGD(std::vector<Tensor> params, SGDOptions options)
    : Optimizer({ParamGroup(std::move(params))}, options.to_map()) {}
SGD::SGD(std::vector<ParamGroup> groups, SGDOptions defaults)
    : Optimizer(std::move(groups), defaults.to_map()) {}

void SGD::step() {
  detail::for_each_param(param_groups(), [&](const ParamGroup& group) {
    const double lr = group.lr(), mu = group.option("momentum"), damp = group.option("dampening"),
                 wd = group.option("weight_decay");
    const bool nesterov = group.option("nesterov") != 0;
    return [=, this](Tensor& p, const Tensor& g) -> detail::Written {
      const bool first = mu != 0 && !has_state(p, "momentum_buffer");
      Tensor buf = mu != 0 ? zero_state(p, "momentum_buffer") : Tensor();
      dispatch_floating(p.dtype(), "SGD", [&]<class T>() {
        const SGDScalars<T> k{T(lr), T(mu), T(1 - damp), T(wd)};
        T* pb = buf.defined() ? buf.data_ptr<T>() : nullptr;
        auto run = [&]<bool Wd, bool Momentum, bool Nesterov>() {
          T* pp = p.data_ptr<T>();
          const T* pg = g.data_ptr<T>();
          const bool avx2 = ::xgrad::detail::use_avx2();
          detail::split_update(p.numel(), [&](std::int64_t o, std::int64_t n) {
            T* pbo = pb != nullptr ? pb + o : nullptr;
            if (avx2)
              sgd_update_avx2<T, Wd, Momentum, Nesterov>(pp + o, pg + o, pbo, n, first, k);
            else
              sgd_update<T, Wd, Momentum, Nesterov>(pp + o, pg + o, pbo, n, first, k);
          });
        };
        auto with_momentum = [&]<bool Wd>() {
          if (mu == 0) return run.template operator()<Wd, false, false>();
          nesterov ? run.template operator()<Wd, true, true>()
                   : run.template operator()<Wd, true, false>();
        };
        wd != 0 ? with_momentum.template operator()<true>()
                : with_momentum.template operator()<false>();
      });
      return {buf};
    };
  });
}

}  // namespace xgrad::optim
