// Every derivative of an op, checked at once: reverse mode against finite differences
// (gradcheck), the backward's own derivative (gradgradcheck), and forward mode against
// reverse mode (the jvp J·u must satisfy vᵀ(J·u) = (Jᵀv)·u for random u and v).
#pragma once

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace xgrad::testing {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

/// A float64 tensor of `like`'s shape from N(0, 1), drawn from a private generator.
inline Tensor random_like(const Tensor& like, std::mt19937_64& gen) {
  Tensor t = empty(like.shape(), float64);
  std::normal_distribution<double> normal;
  double* p = t.data_ptr<double>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = normal(gen);
  return t;
}

inline double dot_all(const Tensor& a, const Tensor& b) {
  const auto va = values_of(a), vb = values_of(b);
  BOOST_REQUIRE_EQUAL(va.size(), vb.size());
  double s = 0;
  for (std::size_t i = 0; i < va.size(); ++i) s += va[i] * vb[i];
  return s;
}

/// Forward mode against reverse mode, for two random (u, v) pairs: the output's tangent under
/// make_dual(x, u) dotted with v equals Σ grad(f, x, v)·u.
inline void check_forward_vs_reverse(const std::string& name, const OpFn& f,
                                     const std::vector<Tensor>& inputs, double tol = 1e-10) {
  std::mt19937_64 gen(1234);
  for (int round = 0; round < 2; ++round) {
    std::vector<Tensor> us;
    for (const Tensor& x : inputs) us.push_back(x.requires_grad() ? random_like(x, gen) : Tensor());
    Tensor jvp;
    {
      autograd::forward_ad::dual_level level;
      std::vector<Tensor> duals;
      for (std::size_t i = 0; i < inputs.size(); ++i)
        duals.push_back(us[i].defined() ? autograd::forward_ad::make_dual(inputs[i].detach(), us[i])
                                        : inputs[i].detach());
      Tensor y = f(duals);
      jvp = autograd::forward_ad::unpack_dual(y).tangent;
      if (!jvp.defined()) jvp = zeros(y.shape(), float64);
    }
    std::vector<Tensor> leaves, wrt;
    for (const Tensor& x : inputs) {
      Tensor c = x.detach().clone();
      if (x.requires_grad()) {
        c.requires_grad_();
        wrt.push_back(c);
      }
      leaves.push_back(c);
    }
    Tensor y = f(leaves);
    Tensor v = random_like(y, gen);
    double rhs = 0;
    if (y.requires_grad()) {
      auto gs = grad({y}, wrt, {v}, false, false, /*allow_unused=*/true);
      std::size_t k = 0;
      for (std::size_t i = 0; i < inputs.size(); ++i)
        if (us[i].defined()) {
          if (gs[k].defined()) rhs += dot_all(gs[k], us[i]);
          ++k;
        }
    }
    const double lhs = dot_all(jvp, v);
    BOOST_CHECK_MESSAGE(
        std::abs(lhs - rhs) <= tol * (1 + std::abs(lhs)),
        name << ": forward mode vᵀ(J·u) = " << lhs << " but reverse mode (Jᵀv)·u = " << rhs);
  }
}

inline void expect_gradcheck(const OpFn& f, const std::vector<Tensor>& inputs, double eps,
                             DerivativeChecks c) {
  GradcheckResult r1 = gradcheck(f, inputs, eps, kAtol, kRtol);
  BOOST_CHECK_MESSAGE(r1.ok, r1.message);
  if (c.second_order) {
    GradcheckResult r2 = gradgradcheck(f, inputs, Tensor(), eps, kAtol, kRtol);
    BOOST_CHECK_MESSAGE(r2.ok, r2.message);
  }
  if (c.forward) check_forward_vs_reverse("f", f, inputs, c.fwd_tol);
}

}  // namespace xgrad::testing
