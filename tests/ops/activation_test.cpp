// Activations: relu, leaky_relu, tanh, sigmoid, softmax and log_softmax along different axes.
// Values in float64 and float32, gradcheck in float64 away from kinks, the conventions at the
// kinks, numerical stability for extreme logits, and the error messages of bad input.
#include <cmath>
#include <limits>
#include <string>

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
using xgrad::testing::tol;

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

BOOST_AUTO_TEST_SUITE_END()
