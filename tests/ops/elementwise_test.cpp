// Elementwise ops: values against hand-computed numbers (float64 and float32), broadcasting,
// scalar operands, gradients (by value at the non-differentiable points, by gradcheck
// elsewhere), comparisons, and the errors for bad shapes and dtypes.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_error_exact;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::kInf;
using xgrad::testing::kNaN;
using xgrad::testing::leaf;
using xgrad::testing::make;
using xgrad::testing::tol;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct Input {
  std::vector<double> values;
  Shape shape;
};

// For float64 and float32: builds the inputs (requiring grad), checks f's dtype, shape and
// values, then (when `grads` is given) backpropagates a seed of ones and checks each input's
// gradient.
void expect_op(const Fn& f, const std::vector<Input>& inputs, const Shape& out_shape,
               const std::vector<double>& out, const std::vector<std::vector<double>>& grads = {}) {
  for (Dtype d : {float64, float32}) {
    BOOST_TEST_CONTEXT("dtype " << dtype_name(d)) {
      std::vector<Tensor> xs;
      for (const auto& in : inputs) xs.push_back(make(in.values, in.shape, d).requires_grad_());
      Tensor y = f(xs);
      BOOST_CHECK(y.dtype() == d);
      expect_values(y, out_shape, out, tol(d));
      if (grads.empty()) continue;
      BOOST_REQUIRE(y.requires_grad());
      y.backward(ones_like(y));
      for (std::size_t i = 0; i < grads.size(); ++i) {
        BOOST_TEST_CONTEXT("gradient of input " << i) {
          BOOST_CHECK(xs[i].grad().dtype() == d);
          expect_values(xs[i].grad(), inputs[i].shape, grads[i], tol(d));
        }
      }
    }
  }
}

// Checks a boolean result against 0/1 values.
void expect_bool(const Tensor& t, const Shape& shape, const std::vector<double>& values) {
  BOOST_CHECK(t.dtype() == boolean);
  BOOST_CHECK(!t.requires_grad());
  expect_values(t, shape, values);
}

const Input kCol{{1.0, 2.0, 3.0}, {3, 1}};           // [3,1]
const Input kRow{{10.0, 20.0, 30.0, 40.0}, {1, 4}};  // [1,4]
const Input kVec{{1.0, 2.0, 3.0, 4.0}, {4}};         // [4]
const Input kCube{[] {                               // [2,3,4] = 0..23
                    std::vector<double> v(24);
                    for (int i = 0; i < 24; ++i) v[static_cast<std::size_t>(i)] = i;
                    return v;
                  }(),
                  {2, 3, 4}};

}  // namespace

BOOST_AUTO_TEST_SUITE(elementwise)

// ---- add ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(add_same_shape) {
  expect_op([](const auto& x) { return add(x[0], x[1]); },
            {{{1.0, -2.0, 0.5}, {3}}, {{0.25, 4.0, -0.5}, {3}}}, {3}, {1.25, 2.0, 0.0},
            {{1, 1, 1}, {1, 1, 1}});
}

BOOST_AUTO_TEST_CASE(add_broadcast_column_row) {
  // [3,1] + [1,4] -> [3,4]; each a[i] feeds 4 outputs, each b[j] feeds 3.
  expect_op([](const auto& x) { return x[0] + x[1]; }, {kCol, kRow}, {3, 4},
            {11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43}, {{4, 4, 4}, {3, 3, 3, 3}});
}

BOOST_AUTO_TEST_CASE(add_broadcast_leading_dims) {
  // [4] + [2,3,4]: out[i] = i + (i % 4 + 1); the [4] operand feeds 6 outputs per element.
  const std::vector<double> expected{1,  3,  5,  7,  5,  7,  9,  11, 9,  11, 13, 15,
                                     13, 15, 17, 19, 17, 19, 21, 23, 21, 23, 25, 27};
  expect_op([](const auto& x) { return add(x[0], x[1]); }, {kVec, kCube}, {2, 3, 4}, expected,
            {{6, 6, 6, 6}, std::vector<double>(24, 1.0)});
  expect_op([](const auto& x) { return add(x[1], x[0]); }, {kVec, kCube}, {2, 3, 4}, expected,
            {{6, 6, 6, 6}, std::vector<double>(24, 1.0)});
}

BOOST_AUTO_TEST_CASE(add_scalar_operands) {
  const Input x{{1.0, 2.0, 4.0}, {3}};
  expect_op([](const auto& v) { return v[0] + 2.0; }, {x}, {3}, {3, 4, 6}, {{1, 1, 1}});
  expect_op([](const auto& v) { return 2.0 + v[0]; }, {x}, {3}, {3, 4, 6}, {{1, 1, 1}});
  // A 0-d tensor operand broadcasts like a scalar and receives the summed gradient.
  expect_op([](const auto& v) { return v[0] + v[1]; }, {x, {{0.5}, {}}}, {3}, {1.5, 2.5, 4.5},
            {{1, 1, 1}, {3}});
}

BOOST_AUTO_TEST_CASE(add_gradcheck) {
  expect_gradcheck([](const auto& x) { return add(x[0], x[1]); },
                   {leaf({2, 3}, -1, 1, 1), leaf({2, 3}, -1, 1, 2)});
  expect_gradcheck([](const auto& x) { return add(x[0], x[1]); },
                   {leaf({3, 1}, -1, 1, 3), leaf({1, 4}, -1, 1, 4)});
  expect_gradcheck([](const auto& x) { return add(x[0], x[1]); },
                   {leaf({4}, -1, 1, 5), leaf({2, 3, 4}, -1, 1, 6)});
  expect_gradcheck([](const auto& x) { return x[0] + 2.0; }, {leaf({3}, -1, 1, 7)});
  expect_gradcheck([](const auto& x) { return 2.0 + x[0]; }, {leaf({3}, -1, 1, 8)});
}

// ---- sub ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(sub_same_shape) {
  expect_op([](const auto& x) { return sub(x[0], x[1]); },
            {{{1.0, -2.0, 0.5}, {3}}, {{0.25, 4.0, -0.5}, {3}}}, {3}, {0.75, -6.0, 1.0},
            {{1, 1, 1}, {-1, -1, -1}});
}

BOOST_AUTO_TEST_CASE(sub_broadcast) {
  expect_op([](const auto& x) { return x[0] - x[1]; }, {kCol, kRow}, {3, 4},
            {-9, -19, -29, -39, -8, -18, -28, -38, -7, -17, -27, -37},
            {{4, 4, 4}, {-3, -3, -3, -3}});
  // [4] - [2,3,4]: out[i] = (i % 4 + 1) - i = 1 - 4 * (i / 4).
  std::vector<double> expected;
  for (double v : {1.0, -3.0, -7.0, -11.0, -15.0, -19.0}) expected.insert(expected.end(), 4, v);
  expect_op([](const auto& x) { return sub(x[0], x[1]); }, {kVec, kCube}, {2, 3, 4}, expected,
            {{6, 6, 6, 6}, std::vector<double>(24, -1.0)});
}

BOOST_AUTO_TEST_CASE(sub_scalar_operands) {
  const Input x{{1.0, 2.0, 4.0}, {3}};
  expect_op([](const auto& v) { return 1.0 - v[0]; }, {x}, {3}, {0, -1, -3}, {{-1, -1, -1}});
  expect_op([](const auto& v) { return v[0] - 1.0; }, {x}, {3}, {0, 1, 3}, {{1, 1, 1}});
}

BOOST_AUTO_TEST_CASE(sub_gradcheck) {
  expect_gradcheck([](const auto& x) { return sub(x[0], x[1]); },
                   {leaf({3, 1}, -1, 1, 1), leaf({1, 4}, -1, 1, 2)});
  expect_gradcheck([](const auto& x) { return sub(x[0], x[1]); },
                   {leaf({4}, -1, 1, 3), leaf({2, 3, 4}, -1, 1, 4)});
  expect_gradcheck([](const auto& x) { return sub(x[0], x[1]); },
                   {leaf({2, 3, 4}, -1, 1, 5), leaf({4}, -1, 1, 6)});
  expect_gradcheck([](const auto& x) { return 1.0 - x[0]; }, {leaf({3}, -1, 1, 7)});
  expect_gradcheck([](const auto& x) { return x[0] - 1.0; }, {leaf({3}, -1, 1, 8)});
}

// ---- mul ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(mul_same_shape) {
  const Input a{{1.5, -2.0, 3.0}, {3}}, b{{2.0, 0.25, -1.0}, {3}};
  expect_op([](const auto& x) { return mul(x[0], x[1]); }, {a, b}, {3}, {3.0, -0.5, -3.0},
            {b.values, a.values});
  // x * x: both uses of x contribute, d/dx = 2x.
  expect_op([](const auto& x) { return x[0] * x[0]; }, {a}, {3}, {2.25, 4.0, 9.0},
            {{3.0, -4.0, 6.0}});
}

BOOST_AUTO_TEST_CASE(mul_broadcast) {
  // d/da[i] = sum_j b[j] = 100, d/db[j] = sum_i a[i] = 6.
  expect_op([](const auto& x) { return x[0] * x[1]; }, {kCol, kRow}, {3, 4},
            {10, 20, 30, 40, 20, 40, 60, 80, 30, 60, 90, 120}, {{100, 100, 100}, {6, 6, 6, 6}});
  // [4] * [2,3,4]: out[i] = i * (i % 4 + 1). d/dvec[k] = sum of cube elements with i % 4 == k
  // = 6k + (0+4+8+12+16+20) = 60 + 6k; d/dcube[i] = vec[i % 4].
  std::vector<double> dcube;
  for (int i = 0; i < 24; ++i) dcube.push_back(i % 4 + 1);
  expect_op(
      [](const auto& x) { return mul(x[1], x[0]); }, {kVec, kCube}, {2, 3, 4},
      {0, 2, 6, 12, 4, 10, 18, 28, 8, 18, 30, 44, 12, 26, 42, 60, 16, 34, 54, 76, 20, 42, 66, 92},
      {{60, 66, 72, 78}, dcube});
}

BOOST_AUTO_TEST_CASE(mul_scalar_operands) {
  const Input x{{1.0, -2.0, 4.0}, {3}};
  expect_op([](const auto& v) { return v[0] * 2.0; }, {x}, {3}, {2, -4, 8}, {{2, 2, 2}});
  expect_op([](const auto& v) { return 2.0 * v[0]; }, {x}, {3}, {2, -4, 8}, {{2, 2, 2}});
}

BOOST_AUTO_TEST_CASE(mul_gradient_to_one_input_only) {
  // Only a requires grad: a gets b, b gets nothing.
  Tensor a = make({1.0, 2.0}, {2}).requires_grad_();
  Tensor b = make({3.0, -4.0}, {2});
  mul(a, b).sum().backward();
  expect_values(a.grad(), {2}, {3.0, -4.0});
  BOOST_CHECK(!b.grad().defined());
  // Only b requires grad.
  Tensor c = make({1.0, 2.0}, {2});
  Tensor d = make({3.0, -4.0}, {2}).requires_grad_();
  mul(c, d).sum().backward();
  expect_values(d.grad(), {2}, {1.0, 2.0});
}

BOOST_AUTO_TEST_CASE(mul_gradcheck) {
  expect_gradcheck([](const auto& x) { return mul(x[0], x[1]); },
                   {leaf({2, 3}, -1, 1, 1), leaf({2, 3}, -1, 1, 2)});
  expect_gradcheck([](const auto& x) { return mul(x[0], x[1]); },
                   {leaf({3, 1}, -1, 1, 3), leaf({1, 4}, -1, 1, 4)});
  expect_gradcheck([](const auto& x) { return mul(x[0], x[1]); },
                   {leaf({4}, -1, 1, 5), leaf({2, 3, 4}, -1, 1, 6)});
  expect_gradcheck([](const auto& x) { return x[0] * 2.0; }, {leaf({3}, -1, 1, 7)});
  expect_gradcheck([](const auto& x) { return 2.0 * x[0]; }, {leaf({3}, -1, 1, 8)});
}

// ---- div ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(div_same_shape) {
  // d(a/b)/da = 1/b, d(a/b)/db = -a/b².
  expect_op([](const auto& x) { return div(x[0], x[1]); },
            {{{1.0, -3.0, 2.0}, {3}}, {{2.0, 4.0, -0.5}, {3}}}, {3}, {0.5, -0.75, -4.0},
            {{0.5, 0.25, -2.0}, {-0.25, 0.1875, -8.0}});
}

BOOST_AUTO_TEST_CASE(div_broadcast) {
  // [3,1] / [1,4]: d/da[i] = sum_j 1/b[j] = 0.1 + 0.05 + 1/30 + 0.025 = 5/24;
  // d/db[j] = -sum_i a[i] / b[j]² = -6 / b[j]².
  expect_op([](const auto& x) { return x[0] / x[1]; }, {kCol, kRow}, {3, 4},
            {0.1, 0.05, 1.0 / 30, 0.025, 0.2, 0.1, 1.0 / 15, 0.05, 0.3, 0.15, 0.1, 0.075},
            {{5.0 / 24, 5.0 / 24, 5.0 / 24}, {-0.06, -0.015, -6.0 / 900, -0.00375}});
  // [2,3,4] / [4]: out[i] = i / (i % 4 + 1).
  expect_op([](const auto& x) { return div(x[1], x[0]); }, {kVec, kCube}, {2, 3, 4},
            {0,  0.5, 2.0 / 3,  0.75, 4,  2.5, 2, 1.75, 8,  4.5,  10.0 / 3, 2.75,
             12, 6.5, 14.0 / 3, 3.75, 16, 8.5, 6, 4.75, 20, 10.5, 22.0 / 3, 5.75});
}

BOOST_AUTO_TEST_CASE(div_scalar_operands) {
  const Input x{{1.0, 2.0, 4.0}, {3}};
  expect_op([](const auto& v) { return 2.0 / v[0]; }, {x}, {3}, {2, 1, 0.5},
            {{-2.0, -0.5, -0.125}});
  expect_op([](const auto& v) { return v[0] / 2.0; }, {x}, {3}, {0.5, 1, 2}, {{0.5, 0.5, 0.5}});
  // Division by zero follows IEEE: ±inf and NaN.
  expect_values(make({1.0, -1.0, 0.0}, {3}) / 0.0, {3}, {kInf, -kInf, kNaN});
}

BOOST_AUTO_TEST_CASE(div_gradcheck) {
  expect_gradcheck([](const auto& x) { return div(x[0], x[1]); },
                   {leaf({2, 3}, -1, 1, 1), leaf({2, 3}, 0.5, 2, 2)});
  expect_gradcheck([](const auto& x) { return div(x[0], x[1]); },
                   {leaf({3, 1}, -1, 1, 3), leaf({1, 4}, 0.5, 2, 4)});
  expect_gradcheck([](const auto& x) { return div(x[0], x[1]); },
                   {leaf({4}, -1, 1, 5), leaf({2, 3, 4}, 0.5, 2, 6)});
  expect_gradcheck([](const auto& x) { return div(x[0], x[1]); },
                   {leaf({2, 3, 4}, -1, 1, 7), leaf({4}, 0.5, 2, 8)});
  expect_gradcheck([](const auto& x) { return x[0] / 2.0; }, {leaf({3}, -1, 1, 9)});
  expect_gradcheck([](const auto& x) { return 2.0 / x[0]; }, {leaf({3}, 0.5, 2, 10)});
  // Only the divisor requires grad.
  Tensor a = make({1.0, -2.0, 3.0}, {3});
  expect_gradcheck([a](const auto& x) { return div(a, x[0]); }, {leaf({3}, 0.5, 2, 11)});
}

// ---- unary ops ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(neg_values_and_gradient) {
  expect_op([](const auto& x) { return neg(x[0]); }, {{{1.5, -2.0, 0.0}, {3}}}, {3},
            {-1.5, 2.0, 0.0}, {{-1, -1, -1}});
  expect_op([](const auto& x) { return -x[0]; }, {{{3.0, -4.0}, {2}}}, {2}, {-3.0, 4.0},
            {{-1, -1}});
  expect_gradcheck([](const auto& x) { return neg(x[0]); }, {leaf({2, 3})});
}

BOOST_AUTO_TEST_CASE(exp_values_and_gradient) {
  // exp' = exp.
  const std::vector<double> e{0.36787944117144233, 1.0, 2.718281828459045, 7.38905609893065};
  expect_op([](const auto& x) { return exp(x[0]); }, {{{-1.0, 0.0, 1.0, 2.0}, {2, 2}}}, {2, 2}, e,
            {e});
  expect_op([](const auto& x) { return x[0].exp(); }, {{{0.0}, {}}}, {}, {1.0}, {{1.0}});
  expect_gradcheck([](const auto& x) { return exp(x[0]); }, {leaf({2, 3}, -2, 2)});
}

BOOST_AUTO_TEST_CASE(log_values_and_gradient) {
  // log' = 1/x.
  expect_op([](const auto& x) { return log(x[0]); }, {{{1.0, 2.718281828459045, 0.5, 4.0}, {4}}},
            {4}, {0.0, 1.0, -0.6931471805599453, 1.3862943611198906},
            {{1.0, 0.36787944117144233, 2.0, 0.25}});
  // IEEE at and below 0: -inf and NaN.
  expect_values(log(make({0.0, -1.0}, {2})), {2}, {-kInf, kNaN});
  expect_values(make({0.0}, {1}, float32).log(), {1}, {-kInf});
  expect_gradcheck([](const auto& x) { return log(x[0]); }, {leaf({2, 3}, 0.5, 3)});
}

BOOST_AUTO_TEST_CASE(sqrt_values_and_gradient) {
  // sqrt' = 1/(2 sqrt x): +inf at 0, as torch.
  expect_op([](const auto& x) { return sqrt(x[0]); }, {{{0.0, 1.0, 4.0, 2.25}, {4}}}, {4},
            {0.0, 1.0, 2.0, 1.5}, {{kInf, 0.5, 0.25, 1.0 / 3}});
  expect_values(make({-1.0}, {1}).sqrt(), {1}, {kNaN});
  expect_gradcheck([](const auto& x) { return sqrt(x[0]); }, {leaf({2, 3}, 0.5, 3)});
}

BOOST_AUTO_TEST_CASE(abs_values_and_gradient) {
  // abs'(x) = sign(x), and 0 at 0 (torch's convention).
  expect_op([](const auto& x) { return abs(x[0]); }, {{{-2.0, 0.0, 3.0, -0.5}, {4}}}, {4},
            {2.0, 0.0, 3.0, 0.5}, {{-1, 0, 1, -1}});
  expect_op([](const auto& x) { return x[0].abs(); }, {{{-0.0}, {1}}}, {1}, {0.0}, {{0.0}});
  expect_gradcheck([](const auto& x) { return abs(x[0]); },
                   {make({-1.5, -0.3, 0.7, 2.0}, {2, 2}).requires_grad_()});
}

// ---- pow ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(pow_tensor_exponent) {
  // d/da = b a^(b-1), d/db = a^b ln a.
  expect_op([](const auto& x) { return pow(x[0], x[1]); },
            {{{2.0, 4.0, 9.0}, {3}}, {{3.0, 0.5, -1.0}, {3}}}, {3}, {8.0, 2.0, 1.0 / 9},
            {{12.0, 0.25, -1.0 / 81},
             {8.0 * 0.6931471805599453, 2.0 * 1.3862943611198906, 2.1972245773362196 / 9}});
}

BOOST_AUTO_TEST_CASE(pow_tensor_exponent_broadcast) {
  // [3,1] ^ [1,4].
  expect_op([](const auto& x) { return pow(x[0], x[1]); },
            {{{1.0, 2.0, 4.0}, {3, 1}}, {{0.0, 0.5, 2.0, -1.0}, {1, 4}}}, {3, 4},
            {1, 1, 1, 1, 1, 1.4142135623730951, 4, 0.5, 1, 2, 16, 0.25});
  expect_gradcheck([](const auto& x) { return pow(x[0], x[1]); },
                   {leaf({3, 1}, 0.5, 2, 1), leaf({1, 4}, -1, 2, 2)});
  expect_gradcheck([](const auto& x) { return pow(x[0], x[1]); },
                   {leaf({4}, 0.5, 2, 3), leaf({2, 3, 4}, -1, 2, 4)});
  expect_gradcheck([](const auto& x) { return pow(x[0], x[1]); },
                   {leaf({2, 3, 4}, 0.5, 2, 5), leaf({4}, -1, 2, 6)});
}

BOOST_AUTO_TEST_CASE(pow_tensor_exponent_at_zero_base) {
  // torch's conventions at a = 0: d/db = 0 where b >= 0; d/da = 0 where b = 0.
  expect_op([](const auto& x) { return pow(x[0], x[1]); },
            {{{0.0, 0.0, 2.0}, {3}}, {{2.0, 0.0, 3.0}, {3}}}, {3}, {0.0, 1.0, 8.0},
            {{0.0, 0.0, 12.0}, {0.0, 0.0, 8.0 * 0.6931471805599453}});
}

BOOST_AUTO_TEST_CASE(pow_scalar_exponent) {
  const Input x{{1.0, 2.0, 3.0, -2.0}, {4}};
  expect_op([](const auto& v) { return pow(v[0], 2.0); }, {x}, {4}, {1, 4, 9, 4}, {{2, 4, 6, -4}});
  expect_op([](const auto& v) { return v[0].pow(3.0); }, {x}, {4}, {1, 8, 27, -8},
            {{3, 12, 27, 12}});
  expect_op([](const auto& v) { return pow(v[0], 0.5); }, {{{1.0, 4.0, 0.25}, {3}}}, {3},
            {1, 2, 0.5}, {{0.5, 0.25, 1.0}});
  expect_op([](const auto& v) { return pow(v[0], -1.0); }, {{{1.0, 2.0, 4.0}, {3}}}, {3},
            {1, 0.5, 0.25}, {{-1.0, -0.25, -0.0625}});
  // Exponent 0: constant 1, gradient 0 (also at 0, where 0 * 0^-1 would be NaN).
  expect_op([](const auto& v) { return pow(v[0], 0.0); }, {{{0.0, 2.0}, {2}}}, {2}, {1, 1},
            {{0.0, 0.0}});
  expect_gradcheck([](const auto& x) { return pow(x[0], 2.0); }, {leaf({2, 3}, -2, 2, 1)});
  expect_gradcheck([](const auto& x) { return pow(x[0], 3.0); }, {leaf({2, 3}, -2, 2, 2)});
  expect_gradcheck([](const auto& x) { return pow(x[0], 0.5); }, {leaf({2, 3}, 0.5, 2, 3)});
  expect_gradcheck([](const auto& x) { return pow(x[0], -1.5); }, {leaf({2, 3}, 0.5, 2, 4)});
}

// ---- clamp --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(clamp_values_and_gradient) {
  // Gradient 1 inside [lo, hi] including the bounds, 0 outside.
  expect_op([](const auto& x) { return clamp(x[0], -1.0, 1.0); },
            {{{-2.0, -1.0, 0.0, 1.0, 2.0, 0.5}, {2, 3}}}, {2, 3}, {-1, -1, 0, 1, 1, 0.5},
            {{0, 1, 1, 1, 0, 1}});
  // One-sided clamps with infinite bounds.
  expect_op([](const auto& x) { return clamp(x[0], 0.0, kInf); },
            {{{-2.0, -1.0, 0.0, 1.0, 2.0, 0.5}, {6}}}, {6}, {0, 0, 0, 1, 2, 0.5},
            {{0, 0, 1, 1, 1, 1}});
  expect_op([](const auto& x) { return clamp(x[0], -kInf, 0.5); }, {{{-2.0, 0.5, 3.0}, {3}}}, {3},
            {-2, 0.5, 0.5}, {{1, 1, 0}});
  // Bounds are compared in the tensor's dtype: an element equal to the rounded bound is at the
  // bound (gradient 1), in float32 too, where 0.1f > 0.1 and 0.2f > 0.2.
  for (Dtype d : {float64, float32}) {
    BOOST_TEST_CONTEXT("dtype " << dtype_name(d)) {
      // (Five elements, not four: GCC 12.2 with -march=native on AVX-512 miscompiles some
      // four-double constants such as {1, 1, 0, 0} into a broadcast {1, 1, 1, 1}.)
      Tensor x = make({0.05, 0.1, 0.15, 0.2, 0.25}, {5}, d).requires_grad_();
      Tensor y = clamp(x, 0.1, 0.2);
      expect_values(y, {5}, {0.1, 0.1, 0.15, 0.2, 0.2}, tol(d));
      y.backward(ones_like(y));
      expect_values(x.grad(), {5}, {0, 1, 1, 1, 0}, 0);
    }
  }
  // A bound beyond float32's range acts as infinity.
  expect_values(clamp(make({-3e38, 3e38}, {2}, float32), -1e300, 1e300), {2}, {-3e38, 3e38}, 1e-6);
  // lo == hi is allowed.
  expect_values(clamp(make({-1.0, 3.0}, {2}), 2.0, 2.0), {2}, {2.0, 2.0});
  expect_gradcheck([](const auto& x) { return clamp(x[0], -1.0, 1.0); },
                   {make({-1.7, -0.4, 0.3, 1.6}, {4}).requires_grad_()});
}

BOOST_AUTO_TEST_CASE(clamp_rejects_inverted_bounds) {
  expect_error([] { clamp(make({1.0}, {1}), 1.0, -1.0); }, {"clamp", "1", "-1"});
}

// ---- maximum / minimum --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(maximum_minimum_values_and_ties) {
  // Ties send half of the gradient to each input.
  const Input a{{1.0, 5.0, 3.0, 2.0}, {4}}, b{{4.0, 2.0, 3.0, 2.0}, {4}};
  expect_op([](const auto& x) { return maximum(x[0], x[1]); }, {a, b}, {4}, {4, 5, 3, 2},
            {{0, 1, 0.5, 0.5}, {1, 0, 0.5, 0.5}});
  expect_op([](const auto& x) { return minimum(x[0], x[1]); }, {a, b}, {4}, {1, 2, 3, 2},
            {{1, 0, 0.5, 0.5}, {0, 1, 0.5, 0.5}});
}

BOOST_AUTO_TEST_CASE(maximum_minimum_broadcast) {
  // [3,1] vs [4]: the gradient of each input is the sum of its weights over the broadcast.
  const Input a{{1.0, 2.0, 3.0}, {3, 1}}, b{{0.0, 2.0, 4.0, 1.5}, {4}};
  expect_op([](const auto& x) { return maximum(x[0], x[1]); }, {a, b}, {3, 4},
            {1, 2, 4, 1.5, 2, 2, 4, 2, 3, 3, 4, 3}, {{1, 2.5, 3}, {0, 1.5, 3, 1}});
  expect_op([](const auto& x) { return minimum(x[0], x[1]); }, {a, b}, {3, 4},
            {0, 1, 1, 1, 0, 2, 2, 1.5, 0, 2, 3, 1.5}, {{3, 1.5, 1}, {3, 1.5, 0, 2}});
}

BOOST_AUTO_TEST_CASE(maximum_minimum_propagate_nan) {
  const Tensor a = make({kNaN, 1.0, 2.0}, {3});
  const Tensor b = make({0.0, kNaN, 1.0}, {3});
  expect_values(maximum(a, b), {3}, {kNaN, kNaN, 2.0});
  expect_values(minimum(a, b), {3}, {kNaN, kNaN, 1.0});
}

BOOST_AUTO_TEST_CASE(maximum_minimum_gradcheck) {
  expect_gradcheck([](const auto& x) { return maximum(x[0], x[1]); },
                   {leaf({2, 3}, -1, 1, 1), leaf({2, 3}, -1, 1, 2)});
  expect_gradcheck([](const auto& x) { return minimum(x[0], x[1]); },
                   {leaf({2, 3}, -1, 1, 1), leaf({2, 3}, -1, 1, 2)});
  expect_gradcheck([](const auto& x) { return maximum(x[0], x[1]); },
                   {leaf({3, 1}, -1, 1, 3), leaf({1, 4}, -1, 1, 4)});
  expect_gradcheck([](const auto& x) { return minimum(x[0], x[1]); },
                   {leaf({4}, -1, 1, 5), leaf({2, 3, 4}, -1, 1, 6)});
}

// ---- comparisons --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(comparisons_give_bool_tensors) {
  for (Dtype d : {float64, float32, int64}) {
    BOOST_TEST_CONTEXT("dtype " << dtype_name(d)) {
      const Tensor a = make({1.0, 2.0, 3.0}, {3}, d), b = make({2.0, 2.0, 2.0}, {3}, d);
      expect_bool(eq(a, b), {3}, {0, 1, 0});
      expect_bool(gt(a, b), {3}, {0, 0, 1});
      expect_bool(lt(a, b), {3}, {1, 0, 0});
      expect_bool(ge(a, b), {3}, {0, 1, 1});
      expect_bool(le(a, b), {3}, {1, 1, 0});
    }
  }
}

BOOST_AUTO_TEST_CASE(comparisons_broadcast_and_record_nothing) {
  Tensor a = make({1.0, 2.0, 3.0}, {3, 1}).requires_grad_();
  Tensor b = make({1.0, 2.0, 3.0}, {3}).requires_grad_();
  expect_bool(gt(a, b), {3, 3}, {0, 0, 0, 1, 0, 0, 1, 1, 0});
  expect_bool(le(a, b), {3, 3}, {1, 1, 1, 0, 1, 1, 0, 0, 1});
  expect_bool(eq(a, b), {3, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  expect_bool(lt(b, a), {3, 3}, {0, 0, 0, 1, 0, 0, 1, 1, 0});
  expect_bool(ge(b, a), {3, 3}, {1, 1, 1, 0, 1, 1, 0, 0, 1});
  BOOST_CHECK(!eq(a, b).grad_fn());
  // NaN compares unequal to everything, itself included.
  const Tensor n = make({kNaN}, {1});
  expect_bool(eq(n, n), {1}, {0});
  expect_bool(le(n, n), {1}, {0});
}

// ---- non-contiguous inputs ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(noncontiguous_inputs) {
  // A transposed operand reads its elements by strides.
  const Tensor m = make({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor mt = m.transpose(0, 1);  // [[1,4],[2,5],[3,6]]
  BOOST_REQUIRE(!mt.is_contiguous());
  expect_values(add(mt, make({10, 20, 30, 40, 50, 60}, {3, 2})), {3, 2}, {11, 24, 32, 45, 53, 66});
  expect_values(mul(mt, make({10, 100}, {2})), {3, 2}, {10, 400, 20, 500, 30, 600});
  expect_values(neg(mt), {3, 2}, {-1, -4, -2, -5, -3, -6});
  expect_values(
      sqrt(mt), {3, 2},
      {1, 2, 1.4142135623730951, 2.23606797749979, 1.7320508075688772, 2.449489742783178});
  // Scalar operands with a strided tensor.
  expect_values(mt * 2.0, {3, 2}, {2, 8, 4, 10, 6, 12});
  expect_values(1.0 - mt, {3, 2}, {0, -3, -1, -4, -2, -5});
  expect_values(12.0 / mt, {3, 2}, {12, 3, 6, 2.4, 4, 2});
  // A broadcast operand that is itself a stride-0 view.
  const Tensor col = expand(make({1, 2, 3}, {3, 1}), {3, 2});
  expect_values(add(col, mt), {3, 2}, {2, 5, 4, 7, 6, 9});
  expect_gradcheck([](const auto& x) { return mul(x[0].transpose(0, 1), x[1]); },
                   {leaf({2, 3}, -1, 1, 1), leaf({3, 1}, -1, 1, 2)});
  expect_gradcheck([](const auto& x) { return div(x[1], x[0].transpose(0, 1)); },
                   {leaf({2, 3}, 0.5, 2, 3), leaf({3, 2}, -1, 1, 4)});
  expect_gradcheck([](const auto& x) { return exp(x[0].transpose(0, 1)); },
                   {leaf({2, 3}, -1, 1, 5)});
}

// ---- empty operands -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(empty_operands) {
  // Broadcasting against an empty dimension gives an empty result, and an empty gradient.
  Tensor a = zeros({0, 3}, float64).requires_grad_();
  Tensor b = make({1, 2, 3}, {3}).requires_grad_();
  Tensor y = a * b;
  BOOST_CHECK(y.shape() == (Shape{0, 3}));
  y.sum().backward();
  expect_values(a.grad(), {0, 3}, {});
  expect_values(b.grad(), {3}, {0, 0, 0});
  expect_values(zeros({2, 0}, float64) + 1.0, {2, 0}, {});
  expect_values(exp(zeros({0}, float32)), {0}, {});
  expect_bool(lt(zeros({0}, float64), zeros({1}, float64)), {0}, {});
}

// ---- errors -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(broadcast_mismatch_names_op_and_shapes) {
  const Tensor a = zeros({2, 3}, float64), b = zeros({4}, float64);
  expect_error([&] { add(a, b); }, {"add", "[2,3]", "[4]", "broadcast"});
  expect_error([&] { a + b; }, {"add", "[2,3]", "[4]"});
  expect_error([&] { sub(a, b); }, {"sub", "[2,3]", "[4]"});
  expect_error([&] { mul(a, b); }, {"mul", "[2,3]", "[4]"});
  expect_error([&] { div(a, b); }, {"div", "[2,3]", "[4]"});
  expect_error([&] { pow(a, b); }, {"pow", "[2,3]", "[4]"});
  expect_error([&] { maximum(a, b); }, {"maximum", "[2,3]", "[4]"});
  expect_error([&] { minimum(a, b); }, {"minimum", "[2,3]", "[4]"});
  expect_error([&] { gt(a, b); }, {"gt", "[2,3]", "[4]"});
  expect_error([&] { eq(a, b); }, {"eq", "[2,3]", "[4]"});
  expect_error(
      [] {
        add(zeros({3, 2}, float64), zeros({2, 3}, float64));
      },
      {"add", "[3,2]", "[2,3]"});
}

BOOST_AUTO_TEST_CASE(mixed_dtypes_are_rejected) {
  const Tensor a = zeros({2}, float32), b = zeros({2}, float64);
  expect_error([&] { mul(a, b); }, {"mul", "float32", "float64", "[2]"});
  expect_error([&] { add(a, b); }, {"add", "float32", "float64"});
  expect_error([&] { sub(b, a); }, {"sub", "float64", "float32"});
  expect_error([&] { div(a, b); }, {"div", "float32", "float64"});
  expect_error([&] { pow(a, b); }, {"pow", "float32", "float64"});
  expect_error([&] { maximum(a, b); }, {"maximum", "float32", "float64"});
  expect_error([&] { lt(a, b); }, {"lt", "float32", "float64"});
}

BOOST_AUTO_TEST_CASE(integer_tensors_are_rejected_by_float_ops) {
  const Tensor i = zeros({2}, int64);
  expect_error([&] { add(i, i); }, {"add", "int64"});
  expect_error([&] { exp(i); }, {"exp", "int64"});
  expect_error([&] { i * 2.0; }, {"mul", "int64"});
}

// ---- in-place writes through a broadcast view ---------------------------------------------

// expand(w.unsqueeze(0), {3, 2}).add_(...) used to keep the last row's sum silently (the three
// rows are one memory location); every in-place op now refuses such a target, as torch.
BOOST_AUTO_TEST_CASE(inplace_into_broadcast_view_throws) {
  Tensor w = tensor({1.0, 2.0}, float64);
  Tensor v = expand(w.unsqueeze(0), {3, 2});
  BOOST_TEST((v.strides() == Shape{0, 1}));
  expect_error_exact(
      [&] {
        v.add_(tensor({{10.0, 20.0}, {30.0, 40.0}, {50.0, 60.0}}, float64));
      },
      "add_: unsupported operation: more than one element of the written-to tensor refers to a "
      "single memory location (a broadcast view of shape [3,2] with strides [0,1]); write into "
      "a clone() or contiguous() copy");
  const Tensor o = ones({3, 2}, float64);
  const std::vector<std::pair<const char*, std::function<void()>>> ops = {
      {"add_", [&] { v.add_(o, 2.0); }},
      {"add_", [&] { v.add_(1.0); }},
      {"sub_", [&] { v.sub_(o); }},
      {"mul_", [&] { v.mul_(o); }},
      {"mul_", [&] { v.mul_(2.0); }},
      {"div_", [&] { v.div_(o); }},
      {"div_", [&] { v.div_(2.0); }},
      {"addcmul_", [&] { v.addcmul_(o, o); }},
      {"addcdiv_", [&] { v.addcdiv_(o, o); }},
      {"sqrt_", [&] { v.sqrt_(); }},
      {"maximum_", [&] { v.maximum_(o); }},
      {"zero_", [&] { v.zero_(); }},
      {"fill_", [&] { v.fill_(3.0); }},
      {"copy_", [&] { v.copy_(o); }},
  };
  for (const auto& [name, f] : ops) {
    BOOST_TEST_CONTEXT(name) {
      expect_error(f, {std::string(name) + ": unsupported operation", "more than one element",
                       "single memory location", "[3,2]", "strides [0,1]"});
    }
  }
  // Under no_grad too (it is not an autograd rule), and for a column broadcast.
  {
    no_grad guard;
    Tensor c = expand(tensor({{1.0}, {2.0}}, float32), {2, 4});
    expect_error([&] { c.fill_(0.0); }, {"fill_", "[2,4]", "strides [1,0]"});
  }
  // Nothing was written.
  expect_values(w, {2}, {1, 2});
  // A broadcast dimension of size 1, or a clone, is a fine target.
  Tensor one = expand(tensor({5.0}, float64), {1});
  one.add_(1.0);
  expect_values(one, {1}, {6});
  Tensor c = v.clone();
  c.add_(tensor({{10.0, 20.0}, {30.0, 40.0}, {50.0, 60.0}}, float64));
  expect_values(c, {3, 2}, {11, 22, 31, 42, 51, 62});
}

BOOST_AUTO_TEST_SUITE_END()
