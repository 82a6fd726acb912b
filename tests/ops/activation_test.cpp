// Activations: relu, leaky_relu, tanh, sigmoid, softmax and log_softmax along different axes.
// Values in float64 and float32, gradcheck in float64 away from kinks, the conventions at the
// kinks, numerical stability for extreme logits, and the error messages of bad input. Higher
// order: second and third derivatives by create_graph against closed forms, and softmax's
// Hessian-vector product and jvp against its Jacobian diag(s) - ssᵀ.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::all_finite;
using xgrad::testing::expect_error;
using xgrad::testing::expect_error_exact;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::kInf;
using xgrad::testing::kNaN;
using xgrad::testing::leaf;
using xgrad::testing::make;
using xgrad::testing::tol;
using xgrad::testing::values_of;
namespace fwd = xgrad::autograd::forward_ad;

namespace {

// d sum(w ⊙ f(x)) / dx for a float64 leaf x: one backward with seed w.
Tensor grad_of(const std::function<Tensor(const Tensor&)>& f, const Tensor& x0, const Tensor& w) {
  Tensor x = x0.detach().clone().requires_grad_();
  f(x).backward(w);
  return x.grad();
}

// [2,3,4] away from 0 (|x| >= 0.1): safe for gradcheck of the kinked activations.
Tensor away_from_zero() {
  Tensor x = leaf({2, 3, 4}, 0.1, 1.0, 7);
  Tensor sign = tensor({1.0, -1.0, -1.0, 1.0}, float64);
  no_grad guard;
  return (x * sign).detach().requires_grad_();
}

// d Σ y / dx, recorded (create_graph) so that it can be differentiated again.
Tensor d_sum(const Tensor& y, const Tensor& x) {
  return grad({sum(y)}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
}

// f(x[i]) for each element of x, in row-major order.
std::vector<double> map_values(const Tensor& x, const std::function<double(double)>& f) {
  std::vector<double> out;
  for (double v : values_of(x)) out.push_back(f(v));
  return out;
}

// J = diag(s) - ssᵀ, the Jacobian of one softmax slice s.
std::vector<std::vector<double>> softmax_jacobian(const std::vector<double>& s) {
  std::vector<std::vector<double>> j(s.size(), std::vector<double>(s.size()));
  for (std::size_t a = 0; a < s.size(); ++a)
    for (std::size_t b = 0; b < s.size(); ++b) j[a][b] = (a == b ? s[a] : 0.0) - s[a] * s[b];
  return j;
}

// m·v for a dense matrix.
std::vector<double> mat_vec(const std::vector<std::vector<double>>& m,
                            const std::vector<double>& v) {
  std::vector<double> out(m.size(), 0.0);
  for (std::size_t a = 0; a < m.size(); ++a)
    for (std::size_t b = 0; b < v.size(); ++b) out[a] += m[a][b] * v[b];
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(activation)

BOOST_AUTO_TEST_CASE(relu_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = tensor({-2.0, -0.5, 0.0, 0.5, 3.0}, d);
    Tensor y = relu(x);
    BOOST_TEST((y.dtype() == d));
    expect_values(y, {5}, {0, 0, 0, 0.5, 3}, tol(d));
    expect_values(x.relu(), {5}, {0, 0, 0, 0.5, 3}, tol(d));
    expect_values(relu(tensor({{-1.5, 2.25}, {0.75, -0.125}}, d).t()), {2, 2}, {0, 0.75, 2.25, 0},
                  tol(d));
    // Infinities and NaN: relu(-inf) is 0 (not -inf·0 = NaN), NaN propagates.
    Tensor special = relu(tensor({-kInf, kInf, kNaN}, d));
    expect_values(special, {3}, {0, kInf, kNaN});
    // relu(x) for x < 0 is +0, not -0.
    Tensor neg_zero = relu(tensor({-3.0}, d));
    BOOST_TEST(!std::signbit(neg_zero.to(float64).item()));
  }
}

BOOST_AUTO_TEST_CASE(relu_gradient_and_convention_at_zero) {
  // relu'(0) = 0, as torch.
  Tensor x = tensor({-1.0, 0.0, 2.0, -0.0}, float64);
  Tensor ones4 = ones({4}, float64);
  expect_values(grad_of([](const Tensor& t) { return relu(t); }, x, ones4), {4}, {0, 0, 1, 0});
  expect_values(
      grad_of([](const Tensor& t) { return relu(t); }, x, tensor({3.0, -5.0, 7.0, 1.0}, float64)),
      {4}, {0, 0, 7, 0});
  // Where relu is flat the gradient is exactly 0, even for an infinite incoming gradient.
  expect_values(grad_of([](const Tensor& t) { return relu(t); }, x,
                        tensor({kInf, -kInf, 2.0, kInf}, float64)),
                {4}, {0, 0, 2, 0});
  // float32 too.
  Tensor xf = tensor({-1.0, 0.0, 2.0}, float32).requires_grad_();
  relu(xf).sum().backward();
  BOOST_TEST((xf.grad().dtype() == float32));
  expect_values(xf.grad(), {3}, {0, 0, 1});
  expect_gradcheck([](const std::vector<Tensor>& in) { return relu(in[0]); }, {away_from_zero()});
}

BOOST_AUTO_TEST_CASE(leaky_relu_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = tensor({-2.0, -0.5, 0.0, 0.5, 3.0}, d);
    expect_values(leaky_relu(x, 0.1), {5}, {-0.2, -0.05, 0, 0.5, 3}, tol(d));
    expect_values(leaky_relu(x), {5}, {-0.02, -0.005, 0, 0.5, 3}, tol(d));  // slope 0.01
    expect_values(leaky_relu(x, 0.0), {5}, {0, 0, 0, 0.5, 3}, tol(d));
    expect_values(leaky_relu(x, -1.5), {5}, {3, 0.75, 0, 0.5, 3}, tol(d));
    expect_values(leaky_relu(tensor({-kInf, kNaN}, d), 0.2), {2}, {-kInf, kNaN});
  }
}

BOOST_AUTO_TEST_CASE(leaky_relu_gradient_and_convention_at_zero) {
  // leaky_relu'(0) = slope, as torch.
  Tensor x = tensor({-1.0, 0.0, 2.0}, float64);
  Tensor seed = tensor({2.0, 3.0, 5.0}, float64);
  expect_values(grad_of([](const Tensor& t) { return leaky_relu(t, 0.1); }, x, seed), {3},
                {0.2, 0.3, 5});
  expect_values(grad_of([](const Tensor& t) { return leaky_relu(t); }, x, ones({3}, float64)), {3},
                {0.01, 0.01, 1});
  Tensor xf = tensor({-1.0, 0.0, 2.0}, float32).requires_grad_();
  leaky_relu(xf, 0.25).sum().backward();
  expect_values(xf.grad(), {3}, {0.25, 0.25, 1});
  expect_gradcheck([](const std::vector<Tensor>& in) { return leaky_relu(in[0], 0.2); },
                   {away_from_zero()});
  expect_gradcheck([](const std::vector<Tensor>& in) { return leaky_relu(in[0]); },
                   {away_from_zero()});
}

BOOST_AUTO_TEST_CASE(tanh_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = tensor({-1.0, 0.0, 0.5, 2.0}, d);
    const std::vector<double> expected = {-0.7615941559557649, 0.0, 0.46211715726000974,
                                          0.9640275800758169};
    expect_values(tanh(x), {4}, expected, tol(d));
    expect_values(x.tanh(), {4}, expected, tol(d));
    expect_values(tanh(tensor({-40.0, 40.0, kInf, -kInf}, d)), {4}, {-1, 1, 1, -1});
  }
  // tanh' = 1 - tanh².
  expect_values(grad_of([](const Tensor& t) { return tanh(t); },
                        tensor({-1.0, 0.0, 0.5, 2.0}, float64), ones({4}, float64)),
                {4}, {0.41997434161402614, 1.0, 0.7864477329659274, 0.07065082485316443});
  expect_gradcheck([](const std::vector<Tensor>& in) { return tanh(in[0]); },
                   {leaf({2, 3}, -2, 2)});
}

BOOST_AUTO_TEST_CASE(sigmoid_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = tensor({-1.0, 0.0, 0.5, 2.0}, d);
    const std::vector<double> expected = {0.2689414213699951, 0.5, 0.6224593312018546,
                                          0.8807970779778823};
    expect_values(sigmoid(x), {4}, expected, tol(d));
    expect_values(x.sigmoid(), {4}, expected, tol(d));
    // No overflow for large |x|: exp(800) would be inf in either dtype.
    expect_values(sigmoid(tensor({-800.0, 800.0, -20.0, 20.0}, d)), {4},
                  {0, 1, 2.0611536181902033e-09, 0.9999999979388463}, tol(d));
    expect_values(sigmoid(tensor({-kInf, kInf}, d)), {2}, {0, 1});
  }
  // sigmoid' = s(1 - s); finite (zero) far out in the tails.
  expect_values(grad_of([](const Tensor& t) { return sigmoid(t); },
                        tensor({-1.0, 0.0, 0.5, 2.0, -800.0, 800.0}, float64), ones({6}, float64)),
                {6}, {0.19661193324148185, 0.25, 0.2350037122015945, 0.10499358540350662, 0, 0});
  expect_gradcheck([](const std::vector<Tensor>& in) { return sigmoid(in[0]); },
                   {leaf({2, 3}, -3, 3)});
}

BOOST_AUTO_TEST_CASE(softmax_values_along_axes) {
  for (Dtype d : kFloatDtypes) {
    expect_values(softmax(tensor({1.0, 2.0, 3.0}, d)), {3},
                  {0.09003057317038046, 0.24472847105479764, 0.6652409557748218}, tol(d));
    Tensor m = tensor({{1.0, 2.0, 3.0}, {1.0, 1.0, 1.0}}, d);
    const std::vector<double> rows = {
        0.09003057317038046, 0.24472847105479764, 0.6652409557748218, 1.0 / 3, 1.0 / 3, 1.0 / 3};
    expect_values(softmax(m), {2, 3}, rows, tol(d));
    expect_values(softmax(m, 1), {2, 3}, rows, tol(d));
    expect_values(
        softmax(m, 0), {2, 3},
        {0.5, 0.7310585786300049, 0.8807970779778823, 0.5, 0.2689414213699951, 0.11920292202211755},
        tol(d));
    expect_values(
        softmax(m, -2), {2, 3},
        {0.5, 0.7310585786300049, 0.8807970779778823, 0.5, 0.2689414213699951, 0.11920292202211755},
        tol(d));
    // Middle axis of a 3-D tensor: x[b,:,i] = [1,2], [3,1], [0,5], [0,5].
    Tensor x3 = tensor({{{1.0, 3.0}, {2.0, 1.0}}, {{0.0, 0.0}, {5.0, 5.0}}}, d);
    expect_values(
        softmax(x3, 1), {2, 2, 2},
        {0.2689414213699951, 0.8807970779778823, 0.7310585786300049, 0.11920292202211755,
         0.006692850924284856, 0.006692850924284856, 0.9933071490757153, 0.9933071490757153},
        tol(d));
    // A non-contiguous input (softmax along the rows of mᵀ = the columns of m).
    expect_values(
        softmax(m.t(), 1), {3, 2},
        {0.5, 0.5, 0.7310585786300049, 0.2689414213699951, 0.8807970779778823, 0.11920292202211755},
        tol(d));
    // Shift invariance: adding 1000 changes nothing.
    expect_values(softmax(tensor({1001.0, 1002.0, 1003.0}, d)), {3},
                  {0.09003057317038046, 0.24472847105479764, 0.6652409557748218}, tol(d));
  }
}

BOOST_AUTO_TEST_CASE(softmax_gradient) {
  // dx = y ⊙ (w - Σ w⊙y) with w = [1,0,0].
  expect_values(grad_of([](const Tensor& t) { return softmax(t); },
                        tensor({1.0, 2.0, 3.0}, float64), tensor({1.0, 0.0, 0.0}, float64)),
                {3}, {0.08192506906499324, -0.022033044520174298, -0.05989202454481893});
  Tensor x = leaf({2, 3, 4}, -2, 2);
  for (std::int64_t axis : {0, 1, 2, -1, -2}) {
    BOOST_TEST_CONTEXT("axis " << axis) {
      expect_gradcheck([axis](const std::vector<Tensor>& in) { return softmax(in[0], axis); }, {x});
    }
  }
  expect_gradcheck([](const std::vector<Tensor>& in) { return softmax(in[0].t(), 0); },
                   {leaf({3, 4}, -2, 2)});
}

BOOST_AUTO_TEST_CASE(log_softmax_values_along_axes) {
  for (Dtype d : kFloatDtypes) {
    expect_values(log_softmax(tensor({1.0, 2.0, 3.0}, d)), {3},
                  {-2.4076059644443806, -1.4076059644443804, -0.4076059644443804}, tol(d));
    Tensor m = tensor({{1.0, 2.0, 3.0}, {1.0, 1.0, 1.0}}, d);
    expect_values(log_softmax(m, -1), {2, 3},
                  {-2.4076059644443806, -1.4076059644443804, -0.4076059644443804,
                   -1.0986122886681098, -1.0986122886681098, -1.0986122886681098},
                  tol(d));
    expect_values(log_softmax(m, 0), {2, 3},
                  {-0.6931471805599453, -0.31326168751822286, -0.1269280110429726,
                   -0.6931471805599453, -1.3132616875182228, -2.1269280110429727},
                  tol(d));
    Tensor x3 = tensor({{{1.0, 3.0}, {2.0, 1.0}}, {{0.0, 0.0}, {5.0, 5.0}}}, d);
    expect_values(
        log_softmax(x3, 1), {2, 2, 2},
        {-1.3132616875182228, -0.1269280110429726, -0.31326168751822286, -2.1269280110429727,
         -5.006715348489118, -5.006715348489118, -0.006715348489117967, -0.006715348489117967},
        tol(d));
  }
}

BOOST_AUTO_TEST_CASE(log_softmax_gradient) {
  // dx = w - softmax ⊙ Σ w with w = [1,0,0].
  expect_values(grad_of([](const Tensor& t) { return log_softmax(t); },
                        tensor({1.0, 2.0, 3.0}, float64), tensor({1.0, 0.0, 0.0}, float64)),
                {3}, {0.9099694268296196, -0.24472847105479764, -0.6652409557748218});
  Tensor x = leaf({2, 3, 4}, -2, 2);
  for (std::int64_t axis : {0, 1, 2, -1, -3}) {
    BOOST_TEST_CONTEXT("axis " << axis) {
      expect_gradcheck([axis](const std::vector<Tensor>& in) { return log_softmax(in[0], axis); },
                       {x});
    }
  }
  expect_gradcheck([](const std::vector<Tensor>& in) { return log_softmax(in[0].t(), 1); },
                   {leaf({3, 4}, -2, 2)});
}

BOOST_AUTO_TEST_CASE(log_softmax_numerically_stable) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = tensor({1000.0, -1000.0, 0.0}, d).requires_grad_();
    Tensor y = log_softmax(x);
    BOOST_TEST(all_finite(y));
    expect_values(y, {3}, {0, -2000, -1000}, tol(d));
    y.sum().backward();
    // d Σ log_softmax / dx = 1 - 3·softmax = [1-3, 1, 1].
    BOOST_TEST(all_finite(x.grad()));
    expect_values(x.grad(), {3}, {-2, 1, 1}, tol(d));

    Tensor z = tensor({1000.0, -1000.0, 0.0}, d).requires_grad_();
    Tensor s = softmax(z);
    expect_values(s, {3}, {1, 0, 0}, tol(d));
    (s * tensor({1.0, 2.0, 3.0}, d)).sum().backward();
    BOOST_TEST(all_finite(z.grad()));
    expect_values(z.grad(), {3}, {0, 0, 0}, tol(d));
  }
}

BOOST_AUTO_TEST_CASE(activation_bad_input_throws) {
  Tensor m = zeros({2, 3}, float64);
  expect_error_exact([&] { softmax(m, 2); },
                     "softmax: axis 2 is out of range for a tensor of shape [2,3]");
  expect_error([&] { log_softmax(m, -3); }, {"log_softmax", "axis -3", "[2,3]"});
  expect_error([] { softmax(scalar_tensor(1.0, float64)); }, {"softmax", "[]"});
  expect_error_exact([] { relu(zeros({2}, int64)); },
                     "relu: expected a float32 or float64 tensor, got int64");
  expect_error([] { leaky_relu(zeros({2}, int64)); }, {"leaky_relu", "int64"});
  expect_error([] { tanh(zeros({2}, boolean)); }, {"tanh", "bool"});
  expect_error([] { sigmoid(zeros({2}, int64)); }, {"sigmoid", "int64"});
  expect_error([] { log_softmax(zeros({2}, int64)); }, {"log_softmax", "int64"});
  // Only float tensors can require grad, so an activation never records on an integer input.
  expect_error([] { zeros({2}, int64).requires_grad_(); }, {"requires_grad_", "int64"});
}

// ---- higher order ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(tanh_second_and_third_derivatives) {
  // t = tanh x: t' = 1 - t², t'' = -2t(1 - t²), t''' = -2(1 - t²)(1 - 3t²).
  Tensor x = make({-1.3, -0.2, 0.4, 1.7}, {4}).requires_grad_();
  Tensor g1 = d_sum(tanh(x), x);
  BOOST_TEST(g1.grad_fn()->name() == "tanh_backward");
  Tensor g2 = d_sum(g1, x);
  Tensor g3 = grad({sum(g2)}, {x})[0];
  expect_values(g1, {4}, map_values(x, [](double v) { return 1 - std::tanh(v) * std::tanh(v); }));
  expect_values(g2, {4}, map_values(x, [](double v) {
                  const double t = std::tanh(v);
                  return -2 * t * (1 - t * t);
                }));
  expect_values(g3, {4}, map_values(x, [](double v) {
                  const double t = std::tanh(v);
                  return -2 * (1 - t * t) * (1 - 3 * t * t);
                }));
}

BOOST_AUTO_TEST_CASE(sigmoid_layer_hessian_vector_product) {
  // f(w) = Σ c ⊙ sigmoid(w ⊙ x), one logistic unit per element: its Hessian in w is diagonal,
  // H = c ⊙ x² ⊙ s(1 - s)(1 - 2s) with s = sigmoid(w ⊙ x).
  Tensor w = make({0.5, -1.0, 2.0}, {3}).requires_grad_();
  Tensor x = make({1.5, 0.7, -0.4}, {3});
  Tensor c = make({1.0, -2.0, 0.5}, {3});
  Tensor v = make({0.3, 1.0, -2.0}, {3});
  Tensor g = grad({sum(c * sigmoid(w * x))}, {w}, {}, std::nullopt, true)[0];
  BOOST_TEST(g.requires_grad());
  Tensor hv = grad({sum(g * v)}, {w})[0];
  std::vector<double> expected;
  const auto wv = values_of(w), xv = values_of(x), cv = values_of(c), vv = values_of(v);
  for (std::size_t i = 0; i < 3; ++i) {
    const double s = 1 / (1 + std::exp(-wv[i] * xv[i]));
    expected.push_back(cv[i] * xv[i] * xv[i] * s * (1 - s) * (1 - 2 * s) * vv[i]);
  }
  expect_values(hv, {3}, expected);
}

BOOST_AUTO_TEST_CASE(relu_and_leaky_relu_second_derivatives) {
  // f = Σ leaky(x)²: f' = 2·leaky(x)·leaky'(x), f'' = 2·leaky'(x)² (relu_backward is
  // differentiated in g; in x its derivative is zero).
  Tensor x = make({-1.5, -0.25, 0.5, 2.0}, {4}).requires_grad_();
  Tensor r = relu(x);
  Tensor g1 = d_sum(r * r, x);
  expect_values(g1, {4}, {0, 0, 1, 4});
  expect_values(grad({sum(g1)}, {x})[0], {4}, {0, 0, 2, 2});
  Tensor l = leaky_relu(x, 0.1);
  Tensor h1 = d_sum(l * l, x);
  expect_values(h1, {4}, {2 * 0.01 * -1.5, 2 * 0.01 * -0.25, 1, 4});
  expect_values(grad({sum(h1)}, {x})[0], {4}, {0.02, 0.02, 2, 2});
  // relu's gradient alone is constant in x: its derivative is zero, and it is still connected
  // to x (torch's threshold_backward: zeros, not "unused").
  Tensor g = d_sum(relu(x), x);
  BOOST_TEST(g.requires_grad());
  BOOST_TEST(g.grad_fn()->name() == "relu_backward");
  expect_values(grad({sum(g)}, {x})[0], {4}, {0, 0, 0, 0});
}

BOOST_AUTO_TEST_CASE(softmax_hessian_vector_product_matches_the_analytic_form) {
  // f = Σ w ⊙ softmax(x) along the rows. g = ∇f = J w; the Hessian-vector product is
  // ∂(g·v)/∂x = J (v ⊙ (w - s·w)) - g (s·v), J = diag(s) - ssᵀ per row.
  const Shape shape = {2, 3};
  Tensor x = make({0.2, -1.0, 1.5, 0.3, 0.3, -2.0}, shape).requires_grad_();
  Tensor w = make({1.0, -0.5, 2.0, 0.7, 1.1, -1.3}, shape);
  Tensor v = make({0.4, 1.0, -0.6, -1.2, 0.5, 2.0}, shape);
  Tensor g = grad({sum(w * softmax(x, 1))}, {x}, {}, std::nullopt, true)[0];
  BOOST_TEST(g.grad_fn()->name() == "softmax_backward");
  Tensor hv = grad({sum(g * v)}, {x})[0];
  const auto sv = values_of(softmax(x.detach(), 1)), wv = values_of(w), vv = values_of(v);
  std::vector<double> expected_g, expected_hv;
  for (std::size_t r = 0; r < 2; ++r) {
    const std::vector<double> s(sv.begin() + 3 * r, sv.begin() + 3 * r + 3);
    const std::vector<double> wr(wv.begin() + 3 * r, wv.begin() + 3 * r + 3);
    const std::vector<double> vr(vv.begin() + 3 * r, vv.begin() + 3 * r + 3);
    const auto j = softmax_jacobian(s);
    const std::vector<double> gr = mat_vec(j, wr);
    double sw = 0, sdv = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      sw += s[k] * wr[k];
      sdv += s[k] * vr[k];
    }
    std::vector<double> u(3);
    for (std::size_t k = 0; k < 3; ++k) u[k] = vr[k] * (wr[k] - sw);
    const std::vector<double> ju = mat_vec(j, u);
    for (std::size_t k = 0; k < 3; ++k) {
      expected_g.push_back(gr[k]);
      expected_hv.push_back(ju[k] - gr[k] * sdv);
    }
  }
  expect_values(g, shape, expected_g);
  expect_values(hv, shape, expected_hv);
}

BOOST_AUTO_TEST_CASE(cross_entropy_hessian_is_diag_s_minus_ssT) {
  // L = -Σ t ⊙ log_softmax(x) along axis 0 (one sample per column), t one-hot per column:
  // ∇L = s - t and ∇²L = diag(s) - ssᵀ, so the Hessian-vector product is (diag(s) - ssᵀ) v.
  Tensor x = make({0.5, -1.0, 1.2, 0.1, -0.3, 2.0}, {3, 2}).requires_grad_();
  Tensor t = make({0.0, 1.0, 1.0, 0.0, 0.0, 0.0}, {3, 2});
  Tensor v = make({1.0, -0.5, 0.25, 2.0, -1.0, 0.5}, {3, 2});
  Tensor g = grad({-sum(t * log_softmax(x, 0))}, {x}, {}, std::nullopt, true)[0];
  Tensor hv = grad({sum(g * v)}, {x})[0];
  const auto sv = values_of(softmax(x.detach(), 0)), tv = values_of(t), vv = values_of(v);
  std::vector<double> expected_g(6), expected_hv(6);
  for (std::size_t col = 0; col < 2; ++col) {
    std::vector<double> s, vc;
    for (std::size_t r = 0; r < 3; ++r) {
      s.push_back(sv[r * 2 + col]);
      vc.push_back(vv[r * 2 + col]);
    }
    const std::vector<double> hvc = mat_vec(softmax_jacobian(s), vc);
    for (std::size_t r = 0; r < 3; ++r) {
      expected_g[r * 2 + col] = s[r] - tv[r * 2 + col];
      expected_hv[r * 2 + col] = hvc[r];
    }
  }
  expect_values(g, {3, 2}, expected_g);
  expect_values(hv, {3, 2}, expected_hv);
}

BOOST_AUTO_TEST_CASE(softmax_and_log_softmax_jvp_match_the_jacobian) {
  // Forward mode: softmax's tangent is J u = s⊙u - s(s·u); log_softmax's is u - Σ s⊙u.
  Tensor x = make({0.2, -1.0, 1.5}, {3});
  Tensor u = make({1.0, 0.5, -2.0}, {3});
  const auto s = values_of(softmax(x)), uv = values_of(u);
  const std::vector<double> ju = mat_vec(softmax_jacobian(s), uv);
  const double su = s[0] * uv[0] + s[1] * uv[1] + s[2] * uv[2];
  fwd::dual_level level;
  Tensor dx = fwd::make_dual(x, u);
  expect_values(fwd::unpack_dual(softmax(dx)).tangent, {3}, ju);
  expect_values(fwd::unpack_dual(log_softmax(dx)).tangent, {3},
                {uv[0] - su, uv[1] - su, uv[2] - su});
}

BOOST_AUTO_TEST_SUITE_END()
