// gelu (exact erf form), softplus, elu, hardtanh, relu6 and logsumexp: values and gradients against
// torch 1.13 (numbers printed by python3-torch, float64), both float dtypes, gradcheck in float64
// away from the kinks, the conventions at the kinks, stability for extreme inputs, that
// argmax/argmin record nothing, and second derivatives by create_graph against closed forms.
#include <cmath>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "ops_golden.hpp"
#include "test_util.hpp"
#include "xgrad/ops/indexing.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_error_exact;
using xgrad::testing::expect_golden;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::GoldenCase;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::kNaN;
using xgrad::testing::leaf;
using xgrad::testing::make;
using xgrad::testing::ops_golden_tol;
using xgrad::testing::read_ops_golden;
using xgrad::testing::tol;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

// The points torch evaluated: x = [-3, -1, -0.25, 0, 0.5, 2, 25].
Tensor points(Dtype d) {
  return tensor({-3.0, -1.0, -0.25, 0.0, 0.5, 2.0, 25.0}, d);
}

// d sum(f(x)) / dx in x's dtype.
Tensor grad_of_sum(const std::function<Tensor(const Tensor&)>& f, Dtype d) {
  Tensor x = points(d).requires_grad_();
  f(x).sum().backward();
  return x.grad();
}

// [2,3,4] float64 leaf with |x| >= 0.1 (away from the kinks at 0).
Tensor away_from_zero() {
  Tensor x = leaf({2, 3, 4}, 0.1, 2.0, 7);
  Tensor sign = tensor({1.0, -1.0, -1.0, 1.0}, float64);
  no_grad guard;
  return (x * sign).detach().requires_grad_();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(more_activation)

// ---- gelu ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(gelu_values_and_gradient_match_torch) {
  // torch.nn.functional.gelu(x) (approximate='none') and its gradient, float64.
  const std::vector<double> y = {-0.00404969409489031,
                                 -0.15865525393145702,
                                 -0.10032341857926907,
                                 0.0,
                                 0.34573123063700656,
                                 1.9544997361036416,
                                 25.0};
  const std::vector<double> g = {-0.01194564720418392,
                                 -0.08331547058768635,
                                 0.304626645116364,
                                 0.5,
                                 0.8674951246561629,
                                 1.085231801078197,
                                 1.0};
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      Tensor out = gelu(points(d));
      BOOST_TEST((out.dtype() == d));
      expect_values(out, {7}, y, tol(d));
      Tensor gx = grad_of_sum([](const Tensor& x) { return gelu(x); }, d);
      BOOST_TEST((gx.dtype() == d));
      expect_values(gx, {7}, g, tol(d));
    }
  }
  // torch gives NaN at -inf too (-inf · 0): kept, not special-cased.
  expect_values(gelu(tensor({-kInf, kInf}, float64)), {2}, {std::nan(""), kInf});
  BOOST_TEST(gelu(points(float64).requires_grad_()).grad_fn()->name() == "gelu");
}

BOOST_AUTO_TEST_CASE(gelu_gradcheck) {
  expect_gradcheck([](const std::vector<Tensor>& in) { return gelu(in[0]); },
                   {leaf({2, 3, 4}, -3, 3)});
  // A non-contiguous input.
  expect_gradcheck([](const std::vector<Tensor>& in) { return gelu(in[0].t()); },
                   {leaf({3, 4}, -3, 3, 5)});
}

// ---- softplus -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(softplus_values_and_gradient_match_torch) {
  // torch.nn.functional.softplus(x) with beta 1, threshold 20 (25 > 20: returned as is).
  const std::vector<double> y = {0.04858735157374206,
                                 0.31326168751822286,
                                 0.5759394198788436,
                                 0.6931471805599453,
                                 0.9740769841801067,
                                 2.1269280110429727,
                                 25.0};
  const std::vector<double> g = {0.04742587317756679,
                                 0.2689414213699951,
                                 0.4378234991142019,
                                 0.5,
                                 0.6224593312018546,
                                 0.8807970779778824,
                                 1.0};
  // beta 2, threshold 5 (2·2 = 4 is below it, 2·25 above).
  const std::vector<double> y2 = {0.0012378425688652247,
                                  0.06346400552148625,
                                  0.23703849209005334,
                                  0.34657359027997264,
                                  0.6566308437591114,
                                  2.0090749639589047,
                                  25.0};
  const std::vector<double> g2 = {0.0024726231566347748,
                                  0.11920292202211755,
                                  0.37754066879814546,
                                  0.5,
                                  0.7310585786300049,
                                  0.9820137900379085,
                                  1.0};
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      expect_values(softplus(points(d)), {7}, y, tol(d));
      expect_values(grad_of_sum([](const Tensor& x) { return softplus(x); }, d), {7}, g, tol(d));
      expect_values(softplus(points(d), 2.0, 5.0), {7}, y2, tol(d));
      expect_values(grad_of_sum([](const Tensor& x) { return softplus(x, 2.0, 5.0); }, d), {7}, g2,
                    tol(d));
    }
  }
  // No overflow: e^800 would be inf, but 800 is past the threshold; far negative gives 0.
  expect_values(softplus(tensor({800.0, -800.0}, float64)), {2}, {800.0, 0.0});
  expect_values(softplus(tensor({800.0, -800.0}, float32)), {2}, {800.0, 0.0});
  expect_error([] { softplus(points(float64), 0.0); }, {"softplus", "beta"});
  // A threshold past exp's range: torch's e^(βx)/(e^(βx) + 1) is inf/inf = NaN at x = 100 in
  // float32; the gradient is 1 (and 0 far below), its limit.
  Tensor big = tensor({100.0, -100.0}, float32).requires_grad_();
  softplus(big, 1.0, 1000.0).sum().backward();
  expect_values(big.grad(), {2}, {1.0, 0.0});
}

BOOST_AUTO_TEST_CASE(softplus_gradcheck) {
  expect_gradcheck([](const std::vector<Tensor>& in) { return softplus(in[0]); },
                   {leaf({2, 3, 4}, -4, 4)});
  expect_gradcheck([](const std::vector<Tensor>& in) { return softplus(in[0], 0.5, 10.0); },
                   {leaf({2, 3, 4}, -4, 4, 3)});
  // Above the threshold the gradient is exactly 1 (x·beta = 6..8 > 5 with beta 2).
  expect_gradcheck([](const std::vector<Tensor>& in) { return softplus(in[0], 2.0, 5.0); },
                   {leaf({5}, 3, 4)});
}

// ---- elu ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(elu_values_and_gradient_match_torch) {
  const std::vector<double> y = {
      -0.950212931632136, -0.6321205588285577, -0.22119921692859512, 0.0, 0.5, 2.0, 25.0};
  // At x = 0 torch's gradient is alpha·e^0 = alpha (the x <= 0 branch).
  const std::vector<double> g = {
      0.049787068367863944, 0.36787944117144233, 0.7788007830714049, 1.0, 1.0, 1.0, 1.0};
  const std::vector<double> y05 = {
      -0.475106465816068, -0.31606027941427883, -0.11059960846429756, 0.0, 0.5, 2.0, 25.0};
  const std::vector<double> g05 = {
      0.024893534183931972, 0.18393972058572117, 0.38940039153570244, 0.5, 1.0, 1.0, 1.0};
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      expect_values(elu(points(d)), {7}, y, tol(d));
      expect_values(grad_of_sum([](const Tensor& x) { return elu(x); }, d), {7}, g, tol(d));
      expect_values(elu(points(d), 0.5), {7}, y05, tol(d));
      expect_values(grad_of_sum([](const Tensor& x) { return elu(x, 0.5); }, d), {7}, g05, tol(d));
    }
  }
  expect_values(elu(tensor({-kInf}, float64), 2.0), {1}, {-2.0});
}

BOOST_AUTO_TEST_CASE(elu_gradcheck) {
  expect_gradcheck([](const std::vector<Tensor>& in) { return elu(in[0]); }, {away_from_zero()});
  expect_gradcheck([](const std::vector<Tensor>& in) { return elu(in[0], 0.3); },
                   {away_from_zero()});
}

BOOST_AUTO_TEST_CASE(new_activations_reject_non_float) {
  Tensor i = tensor({1.0, 2.0}, int64);
  expect_error([&] { gelu(i); }, {"gelu", "int64"});
  expect_error([&] { softplus(i); }, {"softplus", "int64"});
  expect_error([&] { elu(i); }, {"elu", "int64"});
}

// ---- logsumexp ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(logsumexp_values_match_torch) {
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      // Row [1000, 1000, -1000] would overflow exp: the stable form gives 1000 + log 2.
      Tensor a = tensor({{1.0, 2.0, 3.0}, {1000.0, 1000.0, -1000.0}}, d);
      expect_values(logsumexp(a, 1), {2}, {3.4076059644443806, 1000.6931471805599}, tol(d));
      expect_values(logsumexp(a, -1, true), {2, 1}, {3.4076059644443806, 1000.6931471805599},
                    tol(d));
      expect_values(logsumexp(a, 0), {3}, {1000.0, 1000.0, 3.0}, tol(d));
      expect_values(logsumexp(a.t(), 0), {2}, {3.4076059644443806, 1000.6931471805599}, tol(d));
      // torch: +inf in a slice gives +inf; an all -inf slice gives -inf.
      expect_values(logsumexp(tensor({{kInf, 1.0}, {-kInf, -kInf}}, d), 1), {2}, {kInf, -kInf});
    }
  }
  // Middle axis of a 3-D tensor against the naive formula.
  Tensor x = leaf({2, 3, 4}, -2, 2).detach();
  xt::xarray<double> naive = to_xarray<double>(log(sum(exp(x), 1)));
  expect_values(logsumexp(x, 1), {2, 4}, std::vector<double>(naive.begin(), naive.end()), 1e-12);
}

BOOST_AUTO_TEST_CASE(logsumexp_gradient_is_softmax) {
  // torch: d sum(w ⊙ logsumexp(a, 1)) / da with w = [0.5, -2].
  Tensor a = tensor({{1.0, 2.0, 3.0}, {1000.0, 1000.0, -1000.0}}, float64).requires_grad_();
  (logsumexp(a, 1) * tensor({0.5, -2.0}, float64)).sum().backward();
  expect_values(a.grad(), {2, 3},
                {0.04501528658519022, 0.12236423552739879, 0.33262047788741084, -1.000000000000055,
                 -1.000000000000055, -0.0},
                1e-12);
  BOOST_TEST(logsumexp(a, 0).grad_fn()->name() == "logsumexp");
  for (std::int64_t axis : {0, 1, 2, -1}) {
    BOOST_TEST_CONTEXT("axis " << axis) {
      expect_gradcheck([axis](const std::vector<Tensor>& in) { return logsumexp(in[0], axis); },
                       {leaf({2, 3, 4}, -2, 2)});
      expect_gradcheck(
          [axis](const std::vector<Tensor>& in) { return logsumexp(in[0], axis, true); },
          {leaf({2, 3, 4}, -2, 2, 9)});
    }
  }
}

BOOST_AUTO_TEST_CASE(logsumexp_errors) {
  expect_error(
      [] {
        logsumexp(zeros({2, 3}, float64), 2);
      },
      {"logsumexp", "axis 2", "out of range", "[2,3]"});
  expect_error([] { logsumexp(tensor({1.0}, int64), 0); }, {"logsumexp", "int64"});
}

// ---- argmax / argmin are not differentiable -----------------------------------------------

BOOST_AUTO_TEST_CASE(argmax_argmin_record_nothing) {
  Tensor x = leaf({3, 4});
  for (const Tensor& i : {argmax(x, 1), argmin(x, 1), argmax(x, 0, true), argmin(x, -1, true)}) {
    BOOST_TEST((i.dtype() == int64));
    BOOST_TEST(!i.requires_grad());
    BOOST_TEST(!i.grad_fn());
  }
  // Picking the row minima through argmin's indices: the gradient flows through gather only,
  // one 1 per row at the minimum.
  Tensor idx = argmin(x, 1, true);
  gather(x, 1, idx).sum().backward();
  xt::xarray<double> g = to_xarray<double>(x.grad());
  xt::xarray<std::int64_t> at = to_xarray<std::int64_t>(idx);
  for (std::size_t r = 0; r < 3; ++r)
    for (std::size_t c = 0; c < 4; ++c)
      BOOST_TEST(g(r, c) == (static_cast<std::int64_t>(c) == at(r, 0) ? 1.0 : 0.0));
}

// ---- hardtanh, relu6 ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(hardtanh_relu6_match_torch) {
  for (const GoldenCase& c : read_ops_golden("hardtanh.txt")) {
    for (Dtype d : kFloatDtypes) {
      BOOST_TEST_CONTEXT("case " << c.name << ", " << dtype_name(d)) {
        Tensor x = c.at("input").to(d).detach().requires_grad_();
        Tensor out =
            c.name == "relu6" ? relu6(x) : hardtanh(x, c.scalar("min_val"), c.scalar("max_val"));
        BOOST_TEST((out.dtype() == d));
        expect_golden(out, c.at("output"), ops_golden_tol(d));
        out.backward(c.at("grad_output").to(d));
        expect_golden(x.grad(), c.at("grad_input"), ops_golden_tol(d));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(hardtanh_relu6_values_and_bounds) {
  for (Dtype d : kFloatDtypes) {
    // points(): [-3, -1, -0.25, 0, 0.5, 2, 25].
    expect_values(hardtanh(points(d)), {7}, {-1, -1, -0.25, 0, 0.5, 1, 1});
    expect_values(relu6(points(d)), {7}, {0, 0, 0, 0, 0.5, 2, 6});
    expect_values(hardtanh(points(d), -0.25, 2), {7}, {-0.25, -0.25, -0.25, 0, 0.5, 2, 2});
    // Gradient 1 strictly inside (min_val, max_val): 0 at the bounds -1 and 0 (relu6's lower
    // bound), unlike clamp.
    expect_values(grad_of_sum([](const Tensor& x) { return hardtanh(x); }, d), {7},
                  {0, 0, 1, 1, 1, 0, 0});
    expect_values(grad_of_sum([](const Tensor& x) { return relu6(x); }, d), {7},
                  {0, 0, 0, 0, 1, 1, 0});
    Tensor six = tensor({6.0, kNaN, -kInf}, d).requires_grad_();
    Tensor r = relu6(six);
    expect_values(r, {3}, {6, kNaN, 0});
    r.sum().backward();
    expect_values(six.grad(), {3}, {0, 1, 0});
  }
  expect_gradcheck([](const auto& x) { return hardtanh(x[0]); }, {away_from_zero()});
  expect_gradcheck([](const auto& x) { return hardtanh(x[0], -0.5, 1.5); }, {away_from_zero()});
  expect_gradcheck([](const auto& x) { return relu6(x[0] * 4.0); }, {away_from_zero()});
  expect_error_exact([] { hardtanh(zeros({2}), 1, -1); },
                     "hardtanh: min_val 1 is greater than max_val -1");
  expect_error([] { relu6(zeros({2}, int64)); }, {"relu6", "int64"});
}

// ---- higher order ---------------------------------------------------------------------------

namespace {

// The first and second derivatives of Σ f(x), elementwise, by backward with create_graph.
std::pair<Tensor, Tensor> first_and_second(const std::function<Tensor(const Tensor&)>& f,
                                           const std::vector<double>& xs) {
  Tensor x = make(xs, {static_cast<std::int64_t>(xs.size())}).requires_grad_();
  Tensor g1 = grad({sum(f(x))}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  Tensor g2 = grad({sum(g1)}, {x}, {}, /*retain_graph=*/true)[0];
  return {g1, g2};
}

std::vector<double> map_values(const std::vector<double>& xs,
                               const std::function<double(double)>& f) {
  std::vector<double> out;
  for (double v : xs) out.push_back(f(v));
  return out;
}

double logistic(double z) {
  return 1 / (1 + std::exp(-z));
}

}  // namespace

BOOST_AUTO_TEST_CASE(gelu_training_path_keeps_every_derivative) {
  // A large input that requires grad takes the path that computes gelu' in the forward pass
  // (the first-order backward multiplies by it); below 65,536 elements, or without grad, the
  // plain map and the fused backward run. Both must give the same values, gradients, second
  // derivatives (create_graph: the fused backward on x) and jvp, in both dtypes.
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      const double eps = d == float32 ? 1e-6 : 1e-13;
      manual_seed(21);
      Tensor big = uniform({300, 256}, -6, 6, d);
      Tensor g = uniform({300, 256}, -1, 1, d);
      // The reference: the same values through the small path, 256 elements at a time.
      std::vector<Tensor> y_ref, gx_ref, gg_ref;
      for (std::int64_t r = 0; r < 300; ++r) {
        Tensor xr = big.select(0, r).contiguous().requires_grad_();
        Tensor yr = gelu(xr);
        Tensor g1 = grad({sum(mul(yr, g.select(0, r)))}, {xr}, {}, std::nullopt, true)[0];
        Tensor g2 = grad({sum(g1)}, {xr})[0];
        y_ref.push_back(yr.detach());
        gx_ref.push_back(g1.detach());
        gg_ref.push_back(g2);
      }
      Tensor x = big.clone().requires_grad_();
      Tensor y = gelu(x);
      BOOST_TEST(y.grad_fn()->name() == "gelu");
      Tensor gx = grad({sum(mul(y, g))}, {x}, {}, true)[0];  // first order: y' from the forward
      // mul's backward hands gelu's node a fresh gradient, which g ⊙ y' overwrites; y' itself
      // is untouched, so a second backward of the retained graph gives the same gradient.
      expect_golden(grad({sum(mul(y, g))}, {x}, {}, true)[0], gx, 0.0);
      Tensor g1 = grad({sum(mul(y, g))}, {x}, {}, std::nullopt, true)[0];
      Tensor g2 = grad({sum(g1)}, {x})[0];
      expect_golden(y.detach(), stack(y_ref, 0), eps);
      expect_golden(gx, stack(gx_ref, 0), eps);
      expect_golden(g1.detach(), stack(gx_ref, 0), eps);
      expect_golden(g2, stack(gg_ref, 0), eps);
      // gelu' against its closed form Φ(x) + x·φ(x), in float64.
      Tensor xd = big.to(float64).contiguous(), gd = g.to(float64).contiguous();
      std::vector<double> expect;
      for (std::int64_t i = 0; i < xd.numel(); ++i) {
        const double v = xd.data_ptr<double>()[i];
        const double cdf = 0.5 * (1 + std::erf(v * M_SQRT1_2));
        expect.push_back(gd.data_ptr<double>()[i] *
                         (cdf + v * std::exp(-v * v / 2) / std::sqrt(2 * M_PI)));
      }
      expect_values(gx, {300, 256}, expect, 10 * eps);
    }
  }
}

BOOST_AUTO_TEST_CASE(gelu_softplus_elu_second_derivatives_match_closed_forms) {
  const std::vector<double> xs = {-2.5, -1.0, -0.25, 0.5, 2.0, 4.0};
  // gelu'' = φ(x)·(2 - x²), φ the standard normal density.
  auto [gelu1, gelu2] = first_and_second([](const Tensor& x) { return gelu(x); }, xs);
  BOOST_TEST(gelu1.grad_fn()->name() == "gelu_backward");
  expect_values(gelu2, {6}, map_values(xs, [](double x) {
                  return std::exp(-x * x / 2) / std::sqrt(2 * M_PI) * (2 - x * x);
                }));
  // softplus(β = 2, threshold 5)'' = β·σ(βx)(1 - σ(βx)); 0 above the threshold (x = 4).
  auto [sp1, sp2] = first_and_second([](const Tensor& x) { return softplus(x, 2.0, 5.0); }, xs);
  expect_values(sp2, {6}, map_values(xs, [](double x) {
                  const double s = logistic(2 * x);
                  return 2 * x > 5 ? 0.0 : 2 * s * (1 - s);
                }));
  // elu(α = 0.5)'' = α·eˣ for x <= 0, 0 above; so is every higher derivative.
  Tensor x = make(xs, {static_cast<std::int64_t>(xs.size())}).requires_grad_();
  Tensor e1 = grad({sum(elu(x, 0.5))}, {x}, {}, std::nullopt, true)[0];
  Tensor e2 = grad({sum(e1)}, {x}, {}, std::nullopt, true)[0];
  Tensor e3 = grad({sum(e2)}, {x})[0];
  const auto elu2 = map_values(xs, [](double v) { return v <= 0 ? 0.5 * std::exp(v) : 0.0; });
  expect_values(e2, {6}, elu2);
  expect_values(e3, {6}, elu2);
}

BOOST_AUTO_TEST_CASE(gelu_layer_hessian_vector_product) {
  // A gelu unit per element, f(w) = Σ c ⊙ gelu(w ⊙ x): its Hessian in w is diagonal,
  // c ⊙ x² ⊙ gelu''(w ⊙ x).
  Tensor w = tensor({0.5, -1.0, 2.0}, float64).requires_grad_();
  Tensor x = tensor({1.5, 0.7, -0.4}, float64);
  Tensor c = tensor({1.0, -2.0, 0.5}, float64);
  Tensor v = tensor({0.3, 1.0, -2.0}, float64);
  Tensor g = grad({sum(c * gelu(w * x))}, {w}, {}, std::nullopt, true)[0];
  Tensor hv = grad({sum(g * v)}, {w})[0];
  const std::vector<double> wv = {0.5, -1.0, 2.0}, xv = {1.5, 0.7, -0.4}, cv = {1.0, -2.0, 0.5},
                            vv = {0.3, 1.0, -2.0};
  std::vector<double> expected;
  for (std::size_t i = 0; i < 3; ++i) {
    const double z = wv[i] * xv[i];
    const double second = std::exp(-z * z / 2) / std::sqrt(2 * M_PI) * (2 - z * z);
    expected.push_back(cv[i] * xv[i] * xv[i] * second * vv[i]);
  }
  expect_values(hv, {3}, expected);
}

BOOST_AUTO_TEST_CASE(hardtanh_relu6_second_derivative_is_zero) {
  // Piecewise linear: the gradient is constant in x, connected to it (torch's
  // hardtanh_backward has a zero derivative in its input), and its derivative is 0.
  const std::vector<double> xs = {-2.5, -0.25, 0.5, 2.0, 7.0};
  auto [h1, h2] = first_and_second([](const Tensor& x) { return hardtanh(x, -0.5, 1.5); }, xs);
  BOOST_TEST(h1.grad_fn()->name() == "hardtanh_backward");
  expect_values(h1, {5}, {0, 1, 1, 0, 0});
  expect_values(h2, {5}, {0, 0, 0, 0, 0});
  auto [r1, r2] = first_and_second([](const Tensor& x) { return relu6(x) * relu6(x); }, xs);
  // (relu6²)'' = 2 where 0 < x < 6.
  expect_values(r2, {5}, {0, 0, 2, 2, 0});
}

// ---- hardswish ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(hardswish_values_gradient_and_second_derivative) {
  // Values from the formulas of torch 1.13's CPU hardswish and hardswish_backward kernels:
  // gradient -1/2 at x = -3 and 3/2 at x = 3 (the middle piece x/3 + 1/2 includes both
  // bounds). -inf gives 0 (the limit) where torch gives NaN (-inf·0).
  const std::vector<double> xs = {-kInf, -4, -3, -2.5, -1, 0, 0.5, 2, 3, 4, kInf, kNaN};
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      Tensor x = make(xs, {12}).to(d).requires_grad_();
      Tensor y = hardswish(x);
      BOOST_TEST((y.dtype() == d));
      BOOST_TEST(y.grad_fn()->name() == "hardswish");
      expect_values(
          y, {12},
          {0, 0, 0, -2.5 * 0.5 / 6, -1.0 / 3, 0, 0.5 * 3.5 / 6, 10.0 / 6, 3, 4, kInf, kNaN},
          tol(d));
      y.sum().backward();
      expect_values(
          x.grad(), {12},
          {0, 0, -0.5, -2.5 / 3 + 0.5, 1.0 / 6, 0.5, 0.5 / 3 + 0.5, 7.0 / 6, 1.5, 1, 1, kNaN},
          tol(d));
    }
  }
  Tensor a = leaf({2, 3, 4}, -5, 5);
  expect_gradcheck([](const std::vector<Tensor>& in) { return hardswish(in[0]); }, {a});
  // hardswish'' = 1/3 on (-3, 3), 0 elsewhere (0 at the bounds, torch's double backward).
  auto [g1, g2] =
      first_and_second([](const Tensor& x) { return hardswish(x); }, {-4, -3, -2.5, 0, 1, 3, 4});
  BOOST_TEST(g1.grad_fn()->name() == "hardswish_backward");
  expect_values(g2, {7}, {0, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0, 0});
  expect_error([] { hardswish(zeros({2}, int64)); }, {"hardswish", "int64"});
}

BOOST_AUTO_TEST_SUITE_END()
