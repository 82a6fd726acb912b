// xgrad-descent's Newton's method: p ← p − lr·(H + damping·I)⁻¹·∇f, with the gradient and the
// Hessian both from xgrad's autograd — the Hessian by differentiating the gradient again
// (backward with create_graph), one row per seed. Not a library optimizer: torch.optim has no
// Newton either (it needs the Hessian, which a parameter-only step() never sees).
// Source: J. Nocedal and S. J. Wright, "Numerical Optimization", 2nd ed., Springer 2006, §3.3
// (Newton's method) and §3.4 (Hessian modification: the damping term).
#pragma once

#include <array>
#include <cmath>
#include <functional>

#include "xgrad/xgrad.hpp"

namespace descent {

/// ∇f and the Hessian of f at the [2] float64 point p (requires grad), by autograd: the
/// gradient with create_graph, then each Hessian row as the gradient of ∇f seeded with a unit
/// vector (retain_graph: the gradient's graph serves both rows).
struct SecondOrder {
  std::array<double, 2> g;
  std::array<std::array<double, 2>, 2> h;
};

inline SecondOrder second_order(const std::function<xgrad::Tensor(const xgrad::Tensor&)>& f,
                                const xgrad::Tensor& p) {
  using xgrad::Tensor;
  Tensor gt = xgrad::grad({f(p)}, {p}, {}, std::nullopt, /*create_graph=*/true)[0];
  SecondOrder s{};
  const Tensor gv = gt.detach().contiguous();
  s.g = {gv.data_ptr<double>()[0], gv.data_ptr<double>()[1]};
  for (int i = 0; i < 2; ++i) {
    Tensor e = xgrad::zeros({2}, xgrad::float64);
    e.data_ptr<double>()[i] = 1.0;
    // A gradient that does not depend on p (a quadratic's) has no graph: its Hessian row is 0
    // only if f is linear; every test function has a non-constant gradient.
    Tensor row = xgrad::grad({gt}, {p}, {e}, /*retain_graph=*/i == 0)[0].contiguous();
    s.h[i] = {row.data_ptr<double>()[0], row.data_ptr<double>()[1]};
  }
  return s;
}

/// The Newton step d = (H + damping·I)⁻¹·g of a 2×2 system by Cramer's rule; false when the
/// damped Hessian is singular (then the method has no step and stops).
inline bool newton_direction(const SecondOrder& s, double damping, std::array<double, 2>& d) {
  const double a = s.h[0][0] + damping, b = s.h[0][1], c = s.h[1][0], e = s.h[1][1] + damping;
  const double det = a * e - b * c;
  if (det == 0 || !std::isfinite(det)) return false;
  d = {(e * s.g[0] - b * s.g[1]) / det, (a * s.g[1] - c * s.g[0]) / det};
  return true;
}

}  // namespace descent
