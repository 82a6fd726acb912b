// Reductions: sum, mean, max, min (all elements and along axes, keepdim, negative axes),
// argmax/argmin and sum_to. Values against hand-computed numbers in float64 and float32,
// gradients by value (ties) and by gradcheck, and the errors for bad axes and empty tensors.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::kNaN;
using xgrad::testing::leaf;
using xgrad::testing::make;
using xgrad::testing::tol;

namespace {

using Fn = std::function<Tensor(const Tensor&)>;

struct Input {
  std::vector<double> values;
  Shape shape;
};

// For float64 and float32: builds x (requiring grad), checks f(x)'s dtype, shape and values,
// then (when `grad` is given) backpropagates `seed` (ones when empty) and checks x's gradient.
void expect_op(const Fn& f, const Input& x_in, const Shape& out_shape,
               const std::vector<double>& out, const std::vector<double>& grad = {},
               const std::vector<double>& seed = {}) {
  for (Dtype d : {float64, float32}) {
    BOOST_TEST_CONTEXT("dtype " << dtype_name(d)) {
      Tensor x = make(x_in.values, x_in.shape, d).requires_grad_();
      Tensor y = f(x);
      BOOST_CHECK(y.dtype() == d);
      expect_values(y, out_shape, out, tol(d));
      if (grad.empty()) continue;
      BOOST_REQUIRE(y.requires_grad());
      y.backward(seed.empty() ? ones_like(y) : make(seed, y.shape(), d));
      BOOST_CHECK(x.grad().dtype() == d);
      expect_values(x.grad(), x_in.shape, grad, tol(d));
    }
  }
}

// Checks an int64 index tensor.
void expect_indices(const Tensor& t, const Shape& shape, const std::vector<double>& values) {
  BOOST_CHECK(t.dtype() == int64);
  BOOST_CHECK(!t.requires_grad());
  expect_values(t, shape, values);
}

// [[1, 5, 3], [4, 2, 6]]
const Input kX{{1, 5, 3, 4, 2, 6}, {2, 3}};
// [2,3,4] holding 0..23: element (b, k, i) = 12b + 4k + i.
const Input kCube{[] {
                    std::vector<double> v(24);
                    for (int i = 0; i < 24; ++i) v[static_cast<std::size_t>(i)] = i;
                    return v;
                  }(),
                  {2, 3, 4}};
// [2,3,2], not monotone along any axis, with ties.
const Input kR{{1, 9, 8, 2, 5, 5, 0, 3, 7, 7, 6, 1}, {2, 3, 2}};

std::vector<double> filled(std::size_t n, double v) {
  return std::vector<double>(n, v);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(reduction)

// ---- sum ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(sum_all_elements) {
  expect_op([](const Tensor& x) { return sum(x); }, kX, {}, {21}, filled(6, 1));
  expect_op([](const Tensor& x) { return x.sum(); }, kX, {}, {21}, filled(6, 1));
  expect_op([](const Tensor& x) { return sum(x); }, kCube, {}, {276}, filled(24, 1));
  // The seed scales the gradient.
  expect_op([](const Tensor& x) { return sum(x); }, kX, {}, {21}, filled(6, 2.5), {2.5});
  // 0-d and empty tensors.
  expect_op([](const Tensor& x) { return sum(x); }, {{3.5}, {}}, {}, {3.5}, {1});
  expect_values(sum(zeros({0}, float64)), {}, {0.0});
  expect_values(sum(zeros({2, 0}, float64), 1), {2}, {0.0, 0.0});
}

BOOST_AUTO_TEST_CASE(sum_along_axis) {
  expect_op([](const Tensor& x) { return sum(x, 0); }, kX, {3}, {5, 7, 9}, {1, 2, 3, 1, 2, 3},
            {1, 2, 3});
  expect_op([](const Tensor& x) { return sum(x, 1); }, kX, {2}, {9, 12}, {1, 1, 1, 2, 2, 2},
            {1, 2});
  expect_op([](const Tensor& x) { return x.sum(-1); }, kX, {2}, {9, 12}, filled(6, 1));
  expect_op([](const Tensor& x) { return sum(x, -2); }, kX, {3}, {5, 7, 9}, filled(6, 1));
  // 3-d, every axis (the middle one strides over an inner dimension).
  expect_op([](const Tensor& x) { return sum(x, 0); }, kCube, {3, 4},
            {12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34}, filled(24, 1));
  expect_op([](const Tensor& x) { return sum(x, 1); }, kCube, {2, 4},
            {12, 15, 18, 21, 48, 51, 54, 57}, filled(24, 1));
  expect_op([](const Tensor& x) { return sum(x, -1); }, kCube, {2, 3}, {6, 22, 38, 54, 70, 86},
            filled(24, 1));
}

BOOST_AUTO_TEST_CASE(sum_keepdim) {
  expect_op([](const Tensor& x) { return sum(x, 1, true); }, kX, {2, 1}, {9, 12},
            {1, 1, 1, 2, 2, 2}, {1, 2});
  expect_op([](const Tensor& x) { return x.sum(-2, true); }, kX, {1, 3}, {5, 7, 9},
            {1, 2, 3, 1, 2, 3}, {1, 2, 3});
  expect_op([](const Tensor& x) { return sum(x, 1, true); }, kCube, {2, 1, 4},
            {12, 15, 18, 21, 48, 51, 54, 57}, filled(24, 1));
}

BOOST_AUTO_TEST_CASE(sum_several_axes) {
  // Over b and i: 60 + 32k.
  expect_op(
      [](const Tensor& x) {
        return sum(x, Shape{0, 2});
      },
      kCube, {3}, {60, 92, 124}, filled(24, 1));
  expect_op(
      [](const Tensor& x) {
        return sum(x, Shape{-1, 0}, true);
      },
      kCube, {1, 3, 1}, {60, 92, 124}, filled(24, 1));
  expect_op(
      [](const Tensor& x) {
        return sum(x, Shape{0, 1, 2});
      },
      kCube, {}, {276}, filled(24, 1));
  // No axes: the tensor itself (a copy).
  expect_op([](const Tensor& x) { return sum(x, Shape{}); }, kX, {2, 3}, kX.values, filled(6, 1));
}

BOOST_AUTO_TEST_CASE(sum_float32_accumulates_in_float64) {
  // 1e8 + 1 rounds back to 1e8 in float32; a float64 accumulator keeps the 1.
  expect_values(sum(make({1e8, 1, -1e8}, {3}, float32)), {}, {1.0}, 0);
  expect_values(sum(make({1e8, 1, -1e8}, {3, 1}, float32), 0), {1}, {1.0}, 0);
  expect_values(sum(make({1e8, 1, 1, 1, -1e8, 1}, {3, 2}, float32), 0), {2}, {1.0, 3.0}, 0);
  // Several axes and all elements of a matrix: the whole reduction accumulates in float64.
  expect_values(sum(make({1e8, 1, -1e8, 1}, {2, 2}, float32)), {}, {2.0}, 0);
  expect_values(sum(make({1e8, 1, -1e8, 1}, {2, 1, 2}, float32), Shape{0, 2}), {1}, {2.0}, 0);
  expect_values(mean(make({1e8, 1, -1e8, 2}, {2, 2}, float32)), {}, {0.75}, 0);
}

BOOST_AUTO_TEST_CASE(sum_noncontiguous_input) {
  const Tensor t = make(kX.values, kX.shape).transpose(0, 1);  // [[1,4],[5,2],[3,6]]
  BOOST_REQUIRE(!t.is_contiguous());
  expect_values(sum(t, 0), {2}, {9, 12});
  expect_values(sum(t, 1), {3}, {5, 7, 9});
  expect_values(max(t, 1), {3}, {4, 5, 6});
  expect_indices(argmax(t, 0), {2}, {1, 2});
}

BOOST_AUTO_TEST_CASE(sum_gradcheck) {
  expect_gradcheck([](const auto& x) { return sum(x[0]); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return sum(x[0], 1); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return sum(x[0], -1, true); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return sum(x[0], Shape{0, 2}); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return sum(x[0].transpose(0, 2), 0); }, {leaf({2, 3, 4})});
}

// ---- mean ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(mean_values_and_gradient) {
  expect_op([](const Tensor& x) { return mean(x); }, kX, {}, {3.5}, filled(6, 1.0 / 6));
  expect_op([](const Tensor& x) { return x.mean(); }, kX, {}, {3.5}, filled(6, 1.0 / 6));
  expect_op([](const Tensor& x) { return mean(x, 0); }, kX, {3}, {2.5, 3.5, 4.5},
            {0.5, 1, 1.5, 0.5, 1, 1.5}, {1, 2, 3});
  expect_op([](const Tensor& x) { return mean(x, 1); }, kX, {2}, {3, 4}, filled(6, 1.0 / 3));
  expect_op([](const Tensor& x) { return x.mean(-1, true); }, kX, {2, 1}, {3, 4},
            filled(6, 1.0 / 3));
  expect_op([](const Tensor& x) { return mean(x, -2, true); }, kX, {1, 3}, {2.5, 3.5, 4.5},
            filled(6, 0.5));
  expect_op(
      [](const Tensor& x) {
        return mean(x, Shape{0, 2});
      },
      kCube, {3}, {7.5, 11.5, 15.5}, filled(24, 1.0 / 8));
  expect_op([](const Tensor& x) { return mean(x, 1); }, kCube, {2, 4}, {4, 5, 6, 7, 16, 17, 18, 19},
            filled(24, 1.0 / 3));
}

BOOST_AUTO_TEST_CASE(mean_of_empty_is_nan) {
  expect_values(mean(zeros({0}, float64)), {}, {kNaN});
  expect_values(mean(zeros({2, 0}, float32), 1), {2}, {kNaN, kNaN});
}

BOOST_AUTO_TEST_CASE(mean_gradcheck) {
  expect_gradcheck([](const auto& x) { return mean(x[0]); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return mean(x[0], 0); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return mean(x[0], -2, true); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return mean(x[0], Shape{2, 0}, true); }, {leaf({2, 3, 4})});
}

// ---- max / min ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(max_min_all_elements) {
  expect_op([](const Tensor& x) { return max(x); }, kX, {}, {6}, {0, 0, 0, 0, 0, 1});
  expect_op([](const Tensor& x) { return x.max(); }, kX, {}, {6}, {0, 0, 0, 0, 0, 2}, {2});
  expect_op([](const Tensor& x) { return min(x); }, kX, {}, {1}, {1, 0, 0, 0, 0, 0});
  expect_op([](const Tensor& x) { return max(x); }, {{-2.5}, {}}, {}, {-2.5}, {1});
}

BOOST_AUTO_TEST_CASE(max_min_all_elements_ties_share_gradient) {
  // Three maxima get a third each; two minima get half each (torch's convention).
  const Input t{{3, 1, 3, 0, 3, 0}, {2, 3}};
  expect_op([](const Tensor& x) { return max(x); }, t, {}, {3},
            {1.0 / 3, 0, 1.0 / 3, 0, 1.0 / 3, 0});
  expect_op([](const Tensor& x) { return min(x); }, t, {}, {0}, {0, 0, 0, 0.5, 0, 0.5});
  expect_op([](const Tensor& x) { return max(x); }, t, {}, {3}, {1, 0, 1, 0, 1, 0}, {3});
}

BOOST_AUTO_TEST_CASE(max_min_along_axis) {
  expect_op([](const Tensor& x) { return max(x, 0); }, kX, {3}, {4, 5, 6}, {0, 1, 0, 1, 0, 1});
  expect_op([](const Tensor& x) { return max(x, 1); }, kX, {2}, {5, 6}, {0, 2, 0, 0, 0, 3}, {2, 3});
  expect_op([](const Tensor& x) { return x.max(-1, true); }, kX, {2, 1}, {5, 6},
            {0, 1, 0, 0, 0, 1});
  expect_op([](const Tensor& x) { return min(x, 0); }, kX, {3}, {1, 2, 3}, {1, 0, 1, 0, 1, 0});
  expect_op([](const Tensor& x) { return min(x, 1); }, kX, {2}, {1, 2}, {1, 0, 0, 0, 1, 0});
  expect_op([](const Tensor& x) { return min(x, -2, true); }, kX, {1, 3}, {1, 2, 3},
            {1, 0, 1, 0, 1, 0});
  // 3-d along the middle axis (an inner dimension of size 2).
  expect_op([](const Tensor& x) { return max(x, 1); }, kR, {2, 2}, {8, 9, 7, 7},
            {0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0});
  expect_op([](const Tensor& x) { return min(x, 1, true); }, kR, {2, 1, 2}, {1, 2, 0, 1},
            {1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1});
  expect_op([](const Tensor& x) { return max(x, 1); }, kCube, {2, 4},
            {8, 9, 10, 11, 20, 21, 22, 23},
            {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1});
}

BOOST_AUTO_TEST_CASE(max_min_along_axis_ties_go_to_first) {
  // The whole gradient goes to the first extreme element of each slice (as argmax picks).
  const Input z{{2, 7, 7, 2, 5, 5, 1, 1}, {2, 4}};
  expect_op([](const Tensor& x) { return max(x, 1); }, z, {2}, {7, 5}, {0, 1, 0, 0, 1, 0, 0, 0});
  expect_op([](const Tensor& x) { return min(x, 1); }, z, {2}, {2, 1}, {1, 0, 0, 0, 0, 0, 1, 0});
  expect_op([](const Tensor& x) { return max(x, -1, true); }, z, {2, 1}, {7, 5},
            {0, 3, 0, 0, 4, 0, 0, 0}, {3, 4});
  const Input w{{3, 1, 3, 4, 0, 4}, {3, 2}};
  expect_op([](const Tensor& x) { return max(x, 0); }, w, {2}, {3, 4}, {1, 0, 0, 1, 0, 0});
}

BOOST_AUTO_TEST_CASE(max_min_propagate_nan) {
  const Tensor t = make({1, kNaN, 3, 4, 5, 6}, {2, 3});
  expect_values(max(t), {}, {kNaN});
  expect_values(min(t), {}, {kNaN});
  expect_values(max(t, 1), {2}, {kNaN, 6});
  expect_values(min(t, 0), {3}, {1, kNaN, 3});
  expect_indices(argmax(t, 1), {2}, {1, 2});
  expect_indices(argmin(t, 1), {2}, {1, 0});
}

BOOST_AUTO_TEST_CASE(max_min_gradcheck) {
  // Random values: distinct, so the max is differentiable.
  expect_gradcheck([](const auto& x) { return max(x[0]); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return min(x[0]); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return max(x[0], 1); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return max(x[0], -1, true); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return min(x[0], 0); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return min(x[0], -2, true); }, {leaf({2, 3, 4})});
}

// ---- argmax / argmin ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(argmax_argmin_values) {
  for (Dtype d : {float64, float32, int64}) {
    BOOST_TEST_CONTEXT("dtype " << dtype_name(d)) {
      const Tensor x = make(kX.values, kX.shape, d);
      expect_indices(argmax(x, 0), {3}, {1, 0, 1});
      expect_indices(argmax(x, 1), {2}, {1, 2});
      expect_indices(argmax(x, -1, true), {2, 1}, {1, 2});
      expect_indices(argmin(x, 0), {3}, {0, 1, 0});
      expect_indices(argmin(x, -1), {2}, {0, 1});
      expect_indices(argmin(x, 0, true), {1, 3}, {0, 1, 0});
      // Ties: the first index.
      const Tensor r = make(kR.values, kR.shape, d);
      expect_indices(argmax(r, 1), {2, 2}, {1, 0, 1, 1});
      expect_indices(argmin(r, 1), {2, 2}, {0, 1, 0, 2});
      expect_indices(argmax(r, 0), {3, 2}, {0, 0, 0, 1, 1, 0});
      expect_indices(argmax(r, -1), {2, 3}, {1, 0, 0, 1, 0, 0});
      expect_indices(argmin(r, -1, true), {2, 3, 1}, {0, 1, 0, 0, 0, 1});
      expect_indices(argmax(make({4, 7, 7}, {3}, d), 0), {}, {1});
    }
  }
}

BOOST_AUTO_TEST_CASE(argmax_records_no_gradient) {
  Tensor x = make(kX.values, kX.shape).requires_grad_();
  Tensor i = argmax(x, 1);
  BOOST_CHECK(!i.requires_grad());
  BOOST_CHECK(!i.grad_fn());
  expect_indices(i, {2}, {1, 2});
}

// ---- sum_to -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(sum_to_values_and_gradient) {
  // The inverse of broadcasting: sums leading dims and the dims that are 1 in the target.
  expect_op(
      [](const Tensor& x) {
        return sum_to(x, {3, 1});
      },
      kCube, {3, 1}, {60, 92, 124}, filled(24, 1));
  expect_op([](const Tensor& x) { return sum_to(x, {4}); }, kCube, {4}, {60, 66, 72, 78},
            filled(24, 1));
  expect_op(
      [](const Tensor& x) {
        return sum_to(x, {2, 1, 4});
      },
      kCube, {2, 1, 4}, {12, 15, 18, 21, 48, 51, 54, 57}, filled(24, 1));
  expect_op(
      [](const Tensor& x) {
        return sum_to(x, {1, 3, 1});
      },
      kCube, {1, 3, 1}, {60, 92, 124}, filled(24, 1));
  expect_op([](const Tensor& x) { return sum_to(x, {}); }, kCube, {}, {276}, filled(24, 1));
  expect_op([](const Tensor& x) { return sum_to(x, {1, 1}); }, kX, {1, 1}, {21}, filled(6, 1));
  // Same shape: the gradient itself.
  const Tensor c = make(kCube.values, kCube.shape);
  BOOST_CHECK(sum_to(c, {2, 3, 4}).impl() == c.impl());
}

BOOST_AUTO_TEST_CASE(sum_to_gradcheck) {
  expect_gradcheck([](const auto& x) { return sum_to(x[0], {3, 1}); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return sum_to(x[0], {4}); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return sum_to(x[0], {2, 1, 4}); }, {leaf({2, 3, 4})});
}

BOOST_AUTO_TEST_CASE(sum_to_rejects_incompatible_shapes) {
  const Tensor c = zeros({2, 3, 4}, float64);
  expect_error([&] { sum_to(c, {5}); }, {"sum_to", "[2,3,4]", "[5]"});
  expect_error([&] { sum_to(c, {3, 4, 1}); }, {"sum_to", "[2,3,4]", "[3,4,1]"});
  expect_error([&] { sum_to(c, {1, 2, 3, 4}); }, {"sum_to", "[2,3,4]", "[1,2,3,4]"});
}

// ---- errors -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(axis_out_of_range) {
  const Tensor x = zeros({2, 3}, float64);
  expect_error([&] { sum(x, 2); }, {"sum", "axis 2", "[2,3]", "out of range"});
  expect_error([&] { sum(x, -3); }, {"sum", "axis -3", "[2,3]"});
  expect_error([&] { x.sum(2, true); }, {"sum", "axis 2", "[2,3]"});
  expect_error([&] { sum(x, Shape{0, 2}); }, {"sum", "axis 2", "[2,3]"});
  expect_error([&] { mean(x, 2); }, {"mean", "axis 2", "[2,3]"});
  expect_error([&] { max(x, 2); }, {"max", "axis 2", "[2,3]"});
  expect_error([&] { min(x, -3); }, {"min", "axis -3", "[2,3]"});
  expect_error([&] { argmax(x, 2); }, {"argmax", "axis 2", "[2,3]"});
  expect_error([&] { argmin(x, 5); }, {"argmin", "axis 5", "[2,3]"});
  expect_error([] { sum(scalar_tensor(1.0, float64), 0); }, {"sum", "axis 0", "[]"});
}

BOOST_AUTO_TEST_CASE(repeated_axis_is_rejected) {
  const Tensor x = zeros({2, 3}, float64);
  expect_error([&] { sum(x, Shape{0, -2}); }, {"sum", "twice", "[2,3]"});
  expect_error([&] { mean(x, Shape{1, 1}); }, {"mean", "twice", "[2,3]"});
}

BOOST_AUTO_TEST_CASE(max_of_empty_tensor) {
  expect_error([] { max(zeros({0}, float64)); }, {"max", "empty", "[0]"});
  expect_error([] { min(zeros({2, 0}, float32)); }, {"min", "empty", "[2,0]"});
  expect_error([] { max(zeros({2, 0}, float64), 1); }, {"max", "empty", "[2,0]"});
  expect_error([] { argmax(zeros({2, 0}, float64), -1); }, {"argmax", "empty", "[2,0]"});
  expect_error([] { argmin(zeros({0, 3}, float64), 0); }, {"argmin", "empty", "[0,3]"});
  // Reducing a non-empty axis of an empty tensor is fine.
  expect_values(max(zeros({0, 3}, float64), 1), {0}, {});
}

BOOST_AUTO_TEST_CASE(non_float_inputs) {
  expect_error([] { sum(zeros({2}, int64)); }, {"sum", "int64"});
  expect_error([] { mean(zeros({2}, boolean)); }, {"mean", "bool"});
  expect_error([] { max(zeros({2}, boolean)); }, {"max", "bool"});
  // max/min of int64 are defined (no gradient).
  expect_values(max(make({3, -7, 5}, {3}, int64)), {}, {5});
  expect_values(min(make({3, -7, 5}, {3}, int64), 0), {}, {-7});
}

BOOST_AUTO_TEST_SUITE_END()
