// Two-dimensional test functions for optimizers, in float64: the "hilly terrain" that
// xgrad-descent draws and that tests/optim/golden_test.cpp runs every optimizer on.
//
// Each function comes in three forms:
//   - an xgrad expression on a [2] tensor p = (x, y), returning a 0-d tensor (for autograd);
//   - its value f(x, y) in closed form;
//   - its gradient in closed form, evaluated EXACTLY in the order written below (each line is
//     grouped left to right, as C++ and Python both group a*b*c as (a*b)*c). The golden
//     trajectories (tools/make_optim_golden.py) compute the same expressions in Python, so
//     xgrad and torch.optim receive bit-identical gradients.
//
// The value is evaluated in the order given too (squares as products, never pow), so that the
// `f` column of a trajectory CSV is the same in C++ and Python.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::optim::test_functions {

/// A gradient (∂f/∂x, ∂f/∂y).
using Gradient = std::array<double, 2>;

// ---- Rosenbrock ------------------------------------------------------------------------
// f(x, y) = (1 − x)² + 100·(y − x²)²
// Minimum 0 at (1, 1), at the end of a long, narrow, curved ("banana") valley: reaching the
// valley is easy, following it to the minimum is not.
// Source: H. H. Rosenbrock, "An automatic method for finding the greatest or least value of a
// function", The Computer Journal 3(3):175–184, 1960.
// Closed form, in this order:
//   a = 1 - x;  b = y - x*x;  f = a*a + 100*b*b
//   gx = -2*(1 - x) - 400*x*(y - x*x)
//   gy = 200*(y - x*x)
Tensor rosenbrock(const Tensor& p);
double rosenbrock(double x, double y);
Gradient rosenbrock_gradient(double x, double y);

// ---- Himmelblau ------------------------------------------------------------------------
// f(x, y) = (x² + y − 11)² + (x + y² − 7)²
// Four minima, all with f = 0: (3, 2), (−2.805118, 3.131312), (−3.779310, −3.283186),
// (3.584428, −1.848126) (the last three to 6 decimals); a local maximum at
// (−0.270845, −0.923039). Which minimum an optimizer finds depends on where it starts.
// Source: D. M. Himmelblau, "Applied Nonlinear Programming", McGraw-Hill, 1972.
// Closed form, in this order:
//   a = x*x + y - 11;  b = x + y*y - 7;  f = a*a + b*b
//   gx = 4*x*a + 2*b
//   gy = 2*a + 4*y*b
Tensor himmelblau(const Tensor& p);
double himmelblau(double x, double y);
Gradient himmelblau_gradient(double x, double y);

// ---- Beale -----------------------------------------------------------------------------
// f(x, y) = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²
// Minimum 0 at (3, 0.5), in a flat valley bounded by sharp ridges at the corners of
// [−4.5, 4.5]² (the y³ term makes the gradient huge for |y| > 2).
// Source: E. M. L. Beale, "On an iterative method for finding a local minimum of a function of
// more than one variable", Technical Report 25, Statistical Techniques Research Group,
// Princeton University, 1958.
// Closed form, in this order:
//   t1 = 1.5 - x + x*y;  t2 = 2.25 - x + x*y*y;  t3 = 2.625 - x + x*y*y*y
//   f  = t1*t1 + t2*t2 + t3*t3
//   gx = 2*t1*(y - 1) + 2*t2*(y*y - 1) + 2*t3*(y*y*y - 1)
//   gy = 2*t1*x + 4*t2*x*y + 6*t3*x*y*y
Tensor beale(const Tensor& p);
double beale(double x, double y);
Gradient beale_gradient(double x, double y);

// ---- Bowl ------------------------------------------------------------------------------
// f(x, y) = ½·(x² + 10·y²)
// Minimum 0 at (0, 0). An ill-conditioned quadratic (curvatures 1 and 10, condition number
// 10): plain gradient descent zig-zags across the steep y direction while crawling along x,
// the textbook case for momentum (G. Goh, "Why Momentum Really Works", Distill, 2017).
// Closed form, in this order:
//   f  = 0.5*(x*x + 10*y*y)
//   gx = x
//   gy = 10*y
Tensor bowl(const Tensor& p);
double bowl(double x, double y);
Gradient bowl_gradient(double x, double y);

// ---- lookup ----------------------------------------------------------------------------

/// One test function with everything a tool needs to run and draw it.
struct Function {
  std::string_view name;     // "rosenbrock", "himmelblau", "beale", "bowl"
  std::string_view formula;  // plain-text formula, e.g. "(1 − x)² + 100·(y − x²)²"
  Tensor (*expression)(const Tensor& p);
  double (*value)(double x, double y);
  Gradient (*gradient)(double x, double y);
  std::vector<std::array<double, 2>> minima;  // global minima (all with value 0)
  std::array<double, 4> window;               // a good view: xmin, xmax, ymin, ymax
  std::array<double, 2> start;                // a classic starting point
};

/// All four functions, in the order rosenbrock, himmelblau, beale, bowl.
const std::vector<Function>& all();

/// The function called `name`; throws xgrad::Error "unknown function 'x' (choose rosenbrock,
/// himmelblau, beale or bowl)" otherwise.
const Function& get(std::string_view name);

}  // namespace xgrad::optim::test_functions
