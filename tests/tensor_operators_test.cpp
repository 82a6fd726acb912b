// The arithmetic operators a libtorch user writes: + - * / between tensors (broadcasting) and
// with a scalar on either side, unary -, the compound assignments += -= *= /= (in place), and
// sign (gradient 0, as torch). Every operator gets a value test.
#include <vector>

#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::kNaN;
using xgrad::testing::make;
using xgrad::testing::tol;

BOOST_AUTO_TEST_SUITE(tensor_operators)

BOOST_AUTO_TEST_CASE(binary_operators_between_tensors) {
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT("dtype " << dtype_name(d)) {
      const Tensor a = make({1.0, 2.0, 4.0}, {3, 1}, d), b = make({0.5, -2.0}, {2}, d);
      expect_values(a + b, {3, 2}, {1.5, -1, 2.5, 0, 4.5, 2}, tol(d));
      expect_values(a - b, {3, 2}, {0.5, 3, 1.5, 4, 3.5, 6}, tol(d));
      expect_values(a * b, {3, 2}, {0.5, -2, 1, -4, 2, -8}, tol(d));
      expect_values(a / b, {3, 2}, {2, -0.5, 4, -1, 8, -2}, tol(d));
      expect_values(-a, {3, 1}, {-1, -2, -4}, tol(d));
      BOOST_TEST((a + b).dtype() == d);
    }
  }
}

BOOST_AUTO_TEST_CASE(scalar_on_either_side) {
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT("dtype " << dtype_name(d)) {
      const Tensor a = make({1.0, -2.0, 4.0}, {3}, d);
      expect_values(a + 1.5, {3}, {2.5, -0.5, 5.5}, tol(d));
      expect_values(1.5 + a, {3}, {2.5, -0.5, 5.5}, tol(d));
      expect_values(a - 1.5, {3}, {-0.5, -3.5, 2.5}, tol(d));
      expect_values(1.5 - a, {3}, {0.5, 3.5, -2.5}, tol(d));
      expect_values(a * 3.0, {3}, {3, -6, 12}, tol(d));
      expect_values(3.0 * a, {3}, {3, -6, 12}, tol(d));
      expect_values(a / 4.0, {3}, {0.25, -0.5, 1}, tol(d));
      expect_values(4.0 / a, {3}, {4, -2, 1}, tol(d));
      // Integer literals convert to double.
      expect_values(2 * a - 1, {3}, {1, -5, 7}, tol(d));
      BOOST_TEST((a * 3.0).dtype() == d);
    }
  }
  // Gradients through the scalar forms: d/dx (1 - 3x / 2 + 2 / x).
  Tensor x = make({1.0, 2.0}, {2}).requires_grad_();
  (1.0 - 3.0 * x / 2.0 + 2.0 / x).sum().backward();
  expect_values(x.grad(), {2}, {-1.5 - 2.0, -1.5 - 0.5});
}

BOOST_AUTO_TEST_CASE(compound_assignment_is_in_place) {
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT("dtype " << dtype_name(d)) {
      Tensor a = make({1.0, 2.0, 4.0, 8.0}, {2, 2}, d);
      const Tensor row = make({1.0, -1.0}, {2}, d);
      const auto storage = a.storage();
      const auto v0 = a.version();
      Tensor& r = (a += row);
      BOOST_TEST(&r == &a);
      expect_values(a, {2, 2}, {2, 1, 5, 7}, tol(d));
      a -= row;
      expect_values(a, {2, 2}, {1, 2, 4, 8}, tol(d));
      a *= row;
      expect_values(a, {2, 2}, {1, -2, 4, -8}, tol(d));
      a /= make({2.0, 4.0}, {2}, d);
      expect_values(a, {2, 2}, {0.5, -0.5, 2, -2}, tol(d));
      a += 1.0;
      expect_values(a, {2, 2}, {1.5, 0.5, 3, -1}, tol(d));
      a -= 0.5;
      expect_values(a, {2, 2}, {1, 0, 2.5, -1.5}, tol(d));
      a *= -2.0;
      expect_values(a, {2, 2}, {-2, 0, -5, 3}, tol(d));
      a /= 4.0;
      expect_values(a, {2, 2}, {-0.5, 0, -1.25, 0.75}, tol(d));
      BOOST_TEST(a.storage() == storage);  // no new tensor
      BOOST_TEST(a.version() == v0 + 8);
    }
  }
}

BOOST_AUTO_TEST_CASE(compound_assignment_errors) {
  Tensor w = zeros({2}, float64).requires_grad_();
  expect_error([&] { w += 1.0; }, {"add_", "no_grad"});
  expect_error([&] { w *= zeros({2}, float64); }, {"mul_", "no_grad"});
  {
    no_grad guard;
    w -= 1.5;
  }
  expect_values(w, {2}, {-1.5, -1.5});
  Tensor a = zeros({2, 2}, float64);
  expect_error([&] { a += zeros({3}, float64); }, {"add_", "[3]", "[2,2]"});
  expect_error([&] { a /= zeros({2, 2}); }, {"div_", "float64", "float32"});
}

BOOST_AUTO_TEST_CASE(sign_values_and_zero_gradient) {
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT("dtype " << dtype_name(d)) {
      const Tensor a = make({-2.5, -0.0, 0.0, 3.0, kNaN, -1e-30}, {2, 3}, d);
      Tensor s = sign(a);
      BOOST_TEST(s.dtype() == d);
      // NaN gives 0, as torch 1.13.
      expect_values(s, {2, 3}, {-1, 0, 0, 1, 0, -1});
      expect_values(a.sign(), {2, 3}, xgrad::testing::values_of(s));
    }
  }
  expect_values(sign(xgrad::tensor({-7.0, 0.0, 9.0}, int64)).to(float64), {3}, {-1, 0, 1});
  BOOST_TEST(sign(xgrad::tensor({-7.0}, int64)).dtype() == int64);
  BOOST_TEST(to_xarray<bool>(sign(xgrad::tensor({1.0, 0.0}, boolean)))(0));
  // Recorded with gradient 0, as torch's SignBackward.
  Tensor x = make({-1.0, 2.0, 0.0}, {3}).requires_grad_();
  Tensor y = (x.sign() * x).sum();  // |x| with the sign treated as a constant
  BOOST_TEST(x.sign().grad_fn()->name() == "sign");
  y.backward();
  expect_values(x.grad(), {3}, {-1, 1, 0});
  x.zero_grad();
  x.sign().sum().backward();
  expect_values(x.grad(), {3}, {0, 0, 0});
  // Strided input.
  expect_values(make({1.0, -2.0, -3.0, 4.0}, {2, 2}).t().sign(), {2, 2}, {1, -1, -1, 1});
}

BOOST_AUTO_TEST_SUITE_END()
