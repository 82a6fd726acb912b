#include "xgrad/autograd/gradcheck.hpp"

#include <cmath>
#include <random>
#include <sstream>

#include "xgrad/autograd/engine.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, double eps, double atol, double rtol) {
  // Private leaf copies, so perturbing them cannot disturb the caller's tensors.
  std::vector<Tensor> xs;
  std::vector<std::size_t> diff;  // indices of inputs that require grad
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    Tensor c = in.detach().clone();
    if (in.requires_grad()) {
      check(in.dtype() == Dtype::float64, "gradcheck: input ", i,
            " must be float64 for finite differences, got ", dtype_name(in.dtype()));
      c.requires_grad_();
      diff.push_back(i);
    }
    xs.push_back(c);
  }
  check(!diff.empty(), "gradcheck: no input requires grad");

  Tensor y = f(xs);
  check(y.dtype() == Dtype::float64, "gradcheck: f must return a float64 tensor, got ",
        dtype_name(y.dtype()));
  const std::int64_t m = y.numel();

  std::vector<Tensor> wrt;
  for (auto i : diff) wrt.push_back(xs[i]);

  // Analytic Jacobian rows: one backward per output element.
  std::vector<std::vector<Tensor>> rows(static_cast<std::size_t>(m));
  if (y.requires_grad()) {
    for (std::int64_t j = 0; j < m; ++j) {
      Tensor seed = zeros(y.shape(), Dtype::float64);
      seed.data_ptr<double>()[j] = 1.0;
      rows[static_cast<std::size_t>(j)] =
          grad({y}, wrt, {seed}, /*retain_graph=*/true, /*create_graph=*/false,
               /*allow_unused=*/true);
    }
  }

  GradcheckResult res;
  double worst_excess = -INFINITY;
  no_grad guard;
  for (std::size_t k = 0; k < diff.size(); ++k) {
    Tensor& x = xs[diff[k]];
    double* p = x.data_ptr<double>();
    for (std::int64_t e = 0; e < x.numel(); ++e) {
      const double orig = p[e];
      p[e] = orig + eps;
      Tensor yp = f(xs).detach().clone();
      p[e] = orig - eps;
      Tensor ym = f(xs).detach().clone();
      p[e] = orig;
      const double* pp = yp.data_ptr<double>();
      const double* pm = ym.data_ptr<double>();
      for (std::int64_t j = 0; j < m; ++j) {
        const double numeric = (pp[j] - pm[j]) / (2 * eps);
        const Tensor& g = rows[static_cast<std::size_t>(j)].empty()
                              ? Tensor()
                              : rows[static_cast<std::size_t>(j)][k];
        const double analytic = g.defined() ? g.contiguous().data_ptr<double>()[e] : 0.0;
        const double err = std::abs(analytic - numeric);
        // The worst entry has the largest error relative to its tolerance; NaN counts as
        // infinitely bad.
        const double tol = atol + rtol * std::abs(numeric);
        const double excess = std::isnan(err) ? INFINITY
                              : tol > 0       ? err / tol
                              : err == 0      ? 0.0
                                              : INFINITY;
        res.max_abs_error = std::max(res.max_abs_error, err);
        if (excess > worst_excess) {
          worst_excess = excess;
          res.input = diff[k];
          res.element = e;
          res.output = j;
          res.analytic = analytic;
          res.numeric = numeric;
        }
      }
    }
  }
  res.ok = worst_excess <= 1.0;
  std::ostringstream os;
  os << "gradcheck " << (res.ok ? "passed" : "FAILED") << ": worst entry d output[" << res.output
     << "] / d input " << res.input << "[" << res.element << "]: analytic " << res.analytic
     << ", numeric " << res.numeric << " (atol " << atol << ", rtol " << rtol << ")";
  res.message = os.str();
  return res;
}

GradcheckResult gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                              const std::vector<Tensor>& inputs, const Tensor& grad_outputs,
                              double eps, double atol, double rtol, std::uint64_t seed) {
  std::vector<std::size_t> diff;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].requires_grad()) diff.push_back(i);
  check(!diff.empty(), "gradgradcheck: no input requires grad");
  Tensor v = grad_outputs;
  if (!v.defined()) {
    Tensor y;
    {
      no_grad guard;
      y = f(inputs);
    }
    check(y.dtype() == Dtype::float64, "gradgradcheck: f must return a float64 tensor, got ",
          dtype_name(y.dtype()));
    v = empty(y.shape(), Dtype::float64);
    std::mt19937_64 gen(seed);
    std::normal_distribution<double> normal;
    double* pv = v.data_ptr<double>();
    for (std::int64_t i = 0; i < v.numel(); ++i) pv[i] = normal(gen);
  }
  check(v.dtype() == Dtype::float64, "gradgradcheck: grad_outputs must be float64, got ",
        dtype_name(v.dtype()));
  std::vector<Tensor> all = inputs;
  all.push_back(v.detach().clone().requires_grad_());
  const std::size_t n = inputs.size();
  // (x, v) ↦ the vjp, flattened and joined: what gradcheck differentiates.
  auto vjp = [&](const std::vector<Tensor>& xs) {
    enable_grad on;  // gradcheck evaluates under no_grad; the vjp needs a graph
    std::vector<Tensor> args(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(n));
    Tensor y = f(args);
    if (y.shape() != xs[n].shape())
      fail("gradgradcheck: f returned shape ", y.shape(), " but grad_outputs has shape ",
           xs[n].shape());
    std::vector<Tensor> wrt;
    for (auto i : diff) wrt.push_back(xs[i]);
    std::vector<Tensor> g;
    if (y.requires_grad())
      g = grad({y}, wrt, {xs[n]}, /*retain_graph=*/true, /*create_graph=*/true,
               /*allow_unused=*/true);
    std::vector<Tensor> parts;
    for (std::size_t k = 0; k < wrt.size(); ++k) {
      const Tensor gk =
          k < g.size() && g[k].defined() ? g[k] : zeros(wrt[k].shape(), Dtype::float64);
      parts.push_back(reshape(gk, {gk.numel()}));
    }
    return concat(parts, 0);
  };
  GradcheckResult r = gradcheck(vjp, all, eps, atol, rtol);
  r.message = "grad" + r.message;  // "gradgradcheck passed/FAILED: ..."
  return r;
}

}  // namespace xgrad
