// The 2-D optimizer test functions. The closed forms are written exactly as the header (and
// tools/make_optim_golden.py) order them: do not "simplify" them, every regrouping can change
// the last bit of a gradient and with it a golden trajectory.
#include "xgrad/optim/test_functions.hpp"

#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad::optim::test_functions {

namespace {

// x and y of p as [1] views (differentiable), after checking p is a [2] float tensor.
std::pair<Tensor, Tensor> split(const Tensor& p, const char* name) {
  check(p.defined() && p.shape() == Shape{2}, name, ": expected a tensor of shape [2], got ",
        p.defined() ? p.shape() : Shape{});
  return {slice(p, 0, 0, 1), slice(p, 0, 1, 2)};
}

}  // namespace

// ---- Rosenbrock ------------------------------------------------------------------------

Tensor rosenbrock(const Tensor& p) {
  auto [x, y] = split(p, "rosenbrock");
  Tensor a = 1.0 - x;
  Tensor b = y - x * x;
  return (a * a + 100.0 * b * b).sum();
}

double rosenbrock(double x, double y) {
  const double a = 1 - x;
  const double b = y - x * x;
  return a * a + 100 * b * b;
}

Gradient rosenbrock_gradient(double x, double y) {
  const double gx = -2 * (1 - x) - 400 * x * (y - x * x);
  const double gy = 200 * (y - x * x);
  return {gx, gy};
}

// ---- Himmelblau ------------------------------------------------------------------------

Tensor himmelblau(const Tensor& p) {
  auto [x, y] = split(p, "himmelblau");
  Tensor a = x * x + y - 11.0;
  Tensor b = x + y * y - 7.0;
  return (a * a + b * b).sum();
}

double himmelblau(double x, double y) {
  const double a = x * x + y - 11;
  const double b = x + y * y - 7;
  return a * a + b * b;
}

Gradient himmelblau_gradient(double x, double y) {
  const double a = x * x + y - 11;
  const double b = x + y * y - 7;
  const double gx = 4 * x * a + 2 * b;
  const double gy = 2 * a + 4 * y * b;
  return {gx, gy};
}

// ---- Beale -----------------------------------------------------------------------------

Tensor beale(const Tensor& p) {
  auto [x, y] = split(p, "beale");
  Tensor t1 = 1.5 - x + x * y;
  Tensor t2 = 2.25 - x + x * y * y;
  Tensor t3 = 2.625 - x + x * y * y * y;
  return (t1 * t1 + t2 * t2 + t3 * t3).sum();
}

double beale(double x, double y) {
  const double t1 = 1.5 - x + x * y;
  const double t2 = 2.25 - x + x * y * y;
  const double t3 = 2.625 - x + x * y * y * y;
  return t1 * t1 + t2 * t2 + t3 * t3;
}

Gradient beale_gradient(double x, double y) {
  const double t1 = 1.5 - x + x * y;
  const double t2 = 2.25 - x + x * y * y;
  const double t3 = 2.625 - x + x * y * y * y;
  const double gx = 2 * t1 * (y - 1) + 2 * t2 * (y * y - 1) + 2 * t3 * (y * y * y - 1);
  const double gy = 2 * t1 * x + 4 * t2 * x * y + 6 * t3 * x * y * y;
  return {gx, gy};
}

// ---- Bowl ------------------------------------------------------------------------------

Tensor bowl(const Tensor& p) {
  auto [x, y] = split(p, "bowl");
  return (0.5 * (x * x + 10.0 * y * y)).sum();
}

double bowl(double x, double y) {
  return 0.5 * (x * x + 10 * y * y);
}

Gradient bowl_gradient(double x, double y) {
  return {x, 10 * y};
}

// ---- lookup ----------------------------------------------------------------------------

const std::vector<Function>& all() {
  // The overloads need a cast to pick the right one.
  using Expr = Tensor (*)(const Tensor&);
  using Value = double (*)(double, double);
  static const std::vector<Function> functions = {
      {"rosenbrock",
       "(1 − x)² + 100·(y − x²)²",
       static_cast<Expr>(rosenbrock),
       static_cast<Value>(rosenbrock),
       rosenbrock_gradient,
       {{1.0, 1.0}},
       {-2.0, 2.0, -1.0, 3.0},
       {-1.5, 2.0}},
      {"himmelblau",
       "(x² + y − 11)² + (x + y² − 7)²",
       static_cast<Expr>(himmelblau),
       static_cast<Value>(himmelblau),
       himmelblau_gradient,
       {{3.0, 2.0}, {-2.805118, 3.131312}, {-3.779310, -3.283186}, {3.584428, -1.848126}},
       {-5.0, 5.0, -5.0, 5.0},
       {0.0, 0.0}},
      {"beale",
       "(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²",
       static_cast<Expr>(beale),
       static_cast<Value>(beale),
       beale_gradient,
       {{3.0, 0.5}},
       {-4.5, 4.5, -4.5, 4.5},
       {1.0, 1.0}},
      {"bowl",
       "½·(x² + 10·y²)",
       static_cast<Expr>(bowl),
       static_cast<Value>(bowl),
       bowl_gradient,
       {{0.0, 0.0}},
       {-4.0, 4.0, -2.5, 2.5},
       {-3.5, 1.5}},
  };
  return functions;
}

const Function& get(std::string_view name) {
  for (const Function& f : all())
    if (f.name == name) return f;
  fail("unknown function '", std::string(name), "' (choose rosenbrock, himmelblau, beale or bowl)");
}

}  // namespace xgrad::optim::test_functions
