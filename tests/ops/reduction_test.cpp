// Reductions: sum, mean, max, min (all elements and along axes, keepdim, negative axes),
// argmax/argmin and sum_to. Values against hand-computed numbers in float64 and float32,
// gradients by value (ties) and by gradcheck, and the errors for bad axes and empty tensors.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops_golden.hpp"
#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_error_exact;
using xgrad::testing::expect_golden;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::GoldenCase;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::kInf;
using xgrad::testing::kNaN;
using xgrad::testing::leaf;
using xgrad::testing::make;
using xgrad::testing::ops_golden_tol;
using xgrad::testing::read_ops_golden;
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

// The Hessian of the scalar f at x0 (float64) as an [n, n] tensor, n = x0.numel(): one backward
// with create_graph, then one backward of the gradient per row (row j = ∂(∂f/∂x_j)/∂x). A
// gradient that no longer depends on x (piecewise linear f) gives a zero Hessian.
Tensor hessian(const Fn& f, const Tensor& x0) {
  Tensor x = x0.detach().clone().requires_grad_();
  Tensor g = grad({f(x)}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  const std::int64_t n = x.numel();
  Tensor h = zeros({n, n}, float64);
  if (!g.requires_grad()) return h;
  for (std::int64_t j = 0; j < n; ++j) {
    Tensor e = zeros(x.shape(), float64);
    e.data_ptr<double>()[j] = 1;
    Tensor row = grad({g}, {x}, {e}, /*retain_graph=*/true, false, /*allow_unused=*/true)[0];
    if (!row.defined()) continue;
    Tensor r = row.detach().contiguous();
    for (std::int64_t k = 0; k < n; ++k) h.data_ptr<double>()[j * n + k] = r.data_ptr<double>()[k];
  }
  return h;
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

// ---- NaN gradients ------------------------------------------------------------------------

// The case: max()/min() of [1, nan, 3] had gradient [nan, nan, nan] (eq(x, nan) is
// all false, and 0/0); torch gives [0, 1, 0]: the NaN is the result and takes the gradient.
BOOST_AUTO_TEST_CASE(max_min_gradient_with_nan) {
  for (Dtype d : kFloatDtypes) {
    for (bool is_max : {true, false}) {
      BOOST_TEST_CONTEXT((is_max ? "max" : "min") << ", " << dtype_name(d)) {
        Tensor x = make({1, kNaN, 3}, {3}, d).requires_grad_();
        Tensor r = is_max ? max(x) : min(x);
        BOOST_TEST(std::isnan(r.item()));
        r.backward();
        expect_values(x.grad(), {3}, {0, 1, 0});
        // Two NaNs share the gradient, as ties do.
        Tensor y = make({kNaN, 2, kNaN, 0}, {2, 2}, d).requires_grad_();
        (is_max ? max(y) : min(y)).backward(scalar_tensor(4.0, d));
        expect_values(y.grad(), {2, 2}, {2, 0, 2, 0});
        // Along a dim: the first NaN of each slice takes it (torch: index of the NaN).
        Tensor z = make({1, kNaN, 3, 4, 5, 6, kNaN, kNaN, 0}, {3, 3}, d).requires_grad_();
        Tensor rz = is_max ? max(z, 1) : min(z, 1);
        expect_values(rz, {3}, {kNaN, is_max ? 6.0 : 4.0, kNaN});
        rz.backward(make({1, 2, 3}, {3}, d));
        expect_values(z.grad(), {3, 3},
                      {0, 1, 0, is_max ? 0.0 : 2.0, 0, is_max ? 2.0 : 0.0, 3, 0, 0});
        // amax/amin: likewise (torch 1.13 gives NaN to the whole slice there).
        Tensor a = make({1, kNaN, 3}, {1, 3}, d).requires_grad_();
        (is_max ? amax(a, {1}) : amin(a, {1})).sum().backward();
        expect_values(a.grad(), {1, 3}, {0, 1, 0});
      }
    }
  }
}

// ---- amax / amin --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(amax_amin_match_torch) {
  for (const GoldenCase& c : read_ops_golden("amax.txt")) {
    for (Dtype d : kFloatDtypes) {
      BOOST_TEST_CONTEXT("case " << c.name << ", " << dtype_name(d)) {
        Tensor x = c.at("input").to(d).detach().requires_grad_();
        const bool keepdim = c.scalar("keepdim") != 0;
        const Shape dim = c.shape_list("dim");
        Tensor out = c.name.rfind("amax", 0) == 0 ? amax(x, dim, keepdim) : amin(x, dim, keepdim);
        BOOST_TEST((out.dtype() == d));
        expect_golden(out, c.at("output"), ops_golden_tol(d));
        out.backward(c.at("grad_output").to(d));
        expect_golden(x.grad(), c.at("grad_input"), ops_golden_tol(d));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(amax_amin_values_and_ties) {
  for (Dtype d : kFloatDtypes) {
    const Tensor t = make({1, 5, 5, -2, 0, 7}, {2, 3}, d);
    expect_values(amax(t), {}, {7});
    expect_values(amin(t), {}, {-2});
    expect_values(amax(t, {1}), {2}, {5, 7});
    expect_values(amin(t, {0}, true), {1, 3}, {-2, 0, 5});
    expect_values(amax(t, {-1, 0}, true), {1, 1}, {7});
    expect_values(amax(t.t(), {0}), {2}, {5, 7});  // non-contiguous input
    // Ties share evenly (max(axis) would send all to the first): [1, 5, 5] -> 0, 1/2, 1/2.
    Tensor x = t.detach().requires_grad_();
    amax(x, {1}).backward(make({2, 3}, {2}, d));
    expect_values(x.grad(), {2, 3}, {0, 1, 1, 0, 0, 3});
    Tensor y = make({2, 2, 2, 2}, {2, 2}, d).requires_grad_();
    amin(y).backward();
    expect_values(y.grad(), {2, 2}, {0.25, 0.25, 0.25, 0.25});
  }
  // Distinct values: differentiable.
  expect_gradcheck([](const auto& x) { return amax(x[0], {1, 2}); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return amin(x[0], {0}, true); }, {leaf({2, 3, 4})});
  expect_gradcheck([](const auto& x) { return amax(x[0]); }, {leaf({3, 4})});
}

BOOST_AUTO_TEST_CASE(amax_amin_errors) {
  expect_error_exact(
      [] {
        amax(zeros({2, 0}), {1});
      },
      "amax: cannot reduce over dimensions [1] of size 0 in a tensor of shape [2,0]");
  expect_error_exact(
      [] {
        amin(zeros({2, 3}), {2});
      },
      "amin: axis 2 is out of range for a tensor of shape [2,3]");
  expect_error([] { amax(zeros({2, 3}), {1, -1}); }, {"amax", "twice", "[2,3]"});
  expect_error([] { amax(zeros({2}, int64)); }, {"amax", "int64"});
}

// ---- norm ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(norm_matches_torch) {
  for (const GoldenCase& c : read_ops_golden("norm.txt")) {
    for (Dtype d : kFloatDtypes) {
      BOOST_TEST_CONTEXT("case " << c.name << ", " << dtype_name(d)) {
        Tensor x = c.at("input").to(d).detach().requires_grad_();
        const Shape dim = c.has("dim") ? c.shape_list("dim") : Shape{};
        Tensor out = norm(x, c.scalar("p"), dim, c.scalar("keepdim") != 0);
        BOOST_TEST((out.dtype() == d));
        expect_golden(out, c.at("output"), ops_golden_tol(d));
        out.backward(c.at("grad_output").to(d));
        expect_golden(x.grad(), c.at("grad_input"), ops_golden_tol(d));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(norm_values) {
  for (Dtype d : kFloatDtypes) {
    const Tensor v = make({3, -4, 0, 12}, {2, 2}, d);
    expect_values(norm(v), {}, {13}, tol(d));
    expect_values(norm(v, 1), {}, {19}, tol(d));
    expect_values(norm(v, kInf), {}, {12}, tol(d));
    expect_values(norm(v, 2, {1}), {2}, {5, 12}, tol(d));
    expect_values(norm(v, 1, {0}, true), {1, 2}, {3, 16}, tol(d));
    expect_values(norm(v, 3, {1}), {2}, {std::cbrt(91.0), 12}, tol(d));
    expect_values(norm(zeros({0}, d)), {}, {0});
    // No overflow of the squares: torch gives inf for float32 [1e20, 1e20] (it sums the
    // squares in float32); the norm is 1.414e20. Likewise float64 [1e200, 1e200], and no
    // underflow to 0 for [1e-200, 1e-200].
    expect_values(norm(make({1e20, 1e20}, {2}, d)), {}, {std::sqrt(2.0) * 1e20}, tol(d));
  }
  expect_values(norm(make({1e200, 1e200}, {2})), {}, {std::sqrt(2.0) * 1e200}, 1e-15);
  expect_values(norm(make({1e-200, 1e-200}, {2})), {}, {std::sqrt(2.0) * 1e-200}, 0);
  BOOST_TEST(std::abs(norm(make({1e-200, 1e-200}, {2})).item() / (std::sqrt(2.0) * 1e-200) - 1) <
             1e-15);
  expect_values(norm(make({1, kNaN}, {2})), {}, {kNaN});
  expect_values(norm(make({1, -kInf}, {2})), {}, {kInf});
}

// At the zero vector the gradient is 0 for every p (torch's choice), not NaN (0/0).
BOOST_AUTO_TEST_CASE(norm_gradient_at_zero_and_ties) {
  for (Dtype d : kFloatDtypes) {
    for (double p : {1.0, 2.0, 3.0, kInf}) {
      BOOST_TEST_CONTEXT("p " << p << ", " << dtype_name(d)) {
        Tensor x = zeros({3}, d).requires_grad_();
        Tensor n = norm(x, p);
        BOOST_TEST(n.item() == 0.0);
        n.backward();
        expect_values(x.grad(), {3}, {0, 0, 0});
      }
    }
    // p = 2: x/‖x‖; p = 1: sign(x); p = inf: sign(x) shared among the largest |x|.
    Tensor x = make({3, -4, 0}, {3}, d).requires_grad_();
    norm(x).backward();
    expect_values(x.grad(), {3}, {0.6, -0.8, 0}, tol(d));
    x.zero_grad();
    norm(x, 1).backward();
    expect_values(x.grad(), {3}, {1, -1, 0}, tol(d));
    Tensor y = make({-2, 1, 2}, {3}, d).requires_grad_();
    norm(y, kInf).backward();
    expect_values(y.grad(), {3}, {-0.5, 0, 0.5}, tol(d));
  }
}

BOOST_AUTO_TEST_CASE(norm_gradcheck) {
  for (double p : {1.0, 2.0, 3.0, 1.5, kInf}) {
    BOOST_TEST_CONTEXT("p " << p) {
      expect_gradcheck([p](const auto& x) { return norm(x[0], p); }, {leaf({2, 3})});
      expect_gradcheck([p](const auto& x) { return norm(x[0], p, {1}); }, {leaf({2, 3, 4})});
      expect_gradcheck(
          [p](const auto& x) {
            return norm(x[0], p, {0, 2}, true);
          },
          {leaf({2, 3, 4})});
    }
  }
}

BOOST_AUTO_TEST_CASE(norm_errors) {
  expect_error_exact([] { norm(zeros({3}), 0.5); }, "norm: p must be >= 1 or inf, got 0.5");
  expect_error([] { norm(zeros({3}), -kInf); }, {"norm", "-inf"});
  expect_error_exact(
      [] {
        norm(zeros({2, 3}), 2, {-3});
      },
      "norm: axis -3 is out of range for a tensor of shape [2,3]");
  expect_error([] { norm(zeros({3}, int64)); }, {"norm", "int64"});
}

// ---- second derivatives (create_graph) against analytic values ------------------------------

// d²/dx² mean((x − c)²) = 2/N·I: mean's backward (an expand) recorded and differentiated.
BOOST_AUTO_TEST_CASE(hessian_of_mean_squared_distance) {
  const Tensor c = make({0.5, -1, 2, 0, 1, 3}, {2, 3});
  Tensor h = hessian([&](const Tensor& x) { return mean(pow(x - c, 2.0)); },
                     make({1, 2, 3, 4, 5, 6}, {2, 3}));
  std::vector<double> want(36, 0.0);
  for (int j = 0; j < 6; ++j) want[static_cast<std::size_t>(j * 7)] = 2.0 / 6;
  expect_values(h, {6, 6}, want, 1e-14);
  // Along an axis, keepdim: sum over axis 1 of (x − c)², then mean over rows: 2/N_rows·I.
  Tensor h1 = hessian([&](const Tensor& x) { return mean(sum(pow(x - c, 2.0), 1, true)); },
                      make({1, 2, 3, 4, 5, 6}, {2, 3}));
  for (int j = 0; j < 6; ++j) want[static_cast<std::size_t>(j * 7)] = 2.0 / 2;
  expect_values(h1, {6, 6}, want, 1e-14);
}

// logsumexp along rows: the Hessian of Σ_rows logsumexp is diag(p) − ppᵀ per row, p the row's
// softmax; the saved result gets its history back inside the recorded backward.
BOOST_AUTO_TEST_CASE(hessian_of_logsumexp) {
  const std::vector<double> xv{0.3, -1.2, 2.0, 1.0, 1.0, -0.5};
  Tensor h = hessian([](const Tensor& x) { return sum(logsumexp(x, 1)); }, make(xv, {2, 3}));
  std::vector<double> want(36, 0.0);
  for (int r = 0; r < 2; ++r) {
    double z = 0;
    for (int k = 0; k < 3; ++k) z += std::exp(xv[static_cast<std::size_t>(3 * r + k)]);
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 3; ++k) {
        const double pi = std::exp(xv[static_cast<std::size_t>(3 * r + i)]) / z;
        const double pk = std::exp(xv[static_cast<std::size_t>(3 * r + k)]) / z;
        want[static_cast<std::size_t>((3 * r + i) * 6 + 3 * r + k)] = (i == k ? pi : 0) - pi * pk;
      }
  }
  expect_values(h, {6, 6}, want, 1e-14);
}

// ‖x‖₂'s Hessian is (I − x̂x̂ᵀ)/‖x‖; at the zero vector the gradient is the subgradient 0 and
// the Hessian is taken as 0 (torch's masked convention), not NaN.
BOOST_AUTO_TEST_CASE(hessian_of_norm) {
  const std::vector<double> xv{3, -4, 12};  // ‖x‖ = 13
  Tensor h = hessian([](const Tensor& x) { return norm(x); }, make(xv, {3}));
  std::vector<double> want(9);
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 3; ++k)
      want[static_cast<std::size_t>(3 * i + k)] =
          ((i == k ? 1.0 : 0.0) -
           xv[static_cast<std::size_t>(i)] * xv[static_cast<std::size_t>(k)] / 169.0) /
          13.0;
  expect_values(h, {3, 3}, want, 1e-14);
  for (double p : {1.0, 2.0, 3.0, kInf}) {
    BOOST_TEST_CONTEXT("p " << p) {
      expect_values(hessian([p](const Tensor& x) { return norm(x, p); }, zeros({3}, float64)),
                    {3, 3}, filled(9, 0.0));
    }
  }
  // p = 3 along rows: ∂²‖x‖₃/∂x_i∂x_k = 2|x_i|δ_ik/‖x‖² − 2 x_i|x_i| x_k|x_k|/‖x‖⁵.
  const std::vector<double> yv{1, -2, 0.5};
  const double n3 = std::cbrt(1 + 8 + 0.125);
  Tensor h3 = hessian([](const Tensor& x) { return norm(x, 3); }, make(yv, {3}));
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 3; ++k) {
      const double xi = yv[static_cast<std::size_t>(i)], xk = yv[static_cast<std::size_t>(k)];
      want[static_cast<std::size_t>(3 * i + k)] =
          (i == k ? 2 * std::abs(xi) / (n3 * n3) : 0.0) -
          2 * xi * std::abs(xi) * xk * std::abs(xk) / std::pow(n3, 5);
    }
  expect_values(h3, {3, 3}, want, 1e-13);
}

// max/min/amax are piecewise linear: Σ max(x, 1)² has Hessian 2 on the chosen entries' diagonal
// and 0 elsewhere (the recorded backward routes the gradient through the same one-hot mask).
BOOST_AUTO_TEST_CASE(hessian_through_max_and_amax) {
  const Tensor x0 = make({1, 5, 3, 4, 2, 6}, {2, 3});  // row maxima at 1 and 5, minima at 0 and 4
  auto diag = [](std::initializer_list<int> at, double v) {
    std::vector<double> w(36, 0.0);
    for (int j : at) w[static_cast<std::size_t>(j * 7)] = v;
    return w;
  };
  expect_values(hessian([](const Tensor& x) { return sum(pow(max(x, 1), 2.0)); }, x0), {6, 6},
                diag({1, 5}, 2));
  expect_values(hessian([](const Tensor& x) { return sum(pow(min(x, -1, true), 2.0)); }, x0),
                {6, 6}, diag({0, 4}, 2));
  expect_values(hessian([](const Tensor& x) { return pow(max(x), 2.0); }, x0), {6, 6},
                diag({5}, 2));
  expect_values(hessian([](const Tensor& x) { return sum(pow(amax(x, {1}), 2.0)); }, x0), {6, 6},
                diag({1, 5}, 2));
  expect_values(hessian([](const Tensor& x) { return pow(amin(x), 2.0); }, x0), {6, 6},
                diag({0}, 2));
}

// Forward mode directly on a reduction's input (no shape op in the path): the tangent reduced
// as the primal is; max/amax pick (or share, on ties) the tangent at the extremes.
BOOST_AUTO_TEST_CASE(jvp_rules_by_value) {
  namespace fw = autograd::forward_ad;
  const Tensor x = make({1, 5, 5, 4, 2, 6}, {2, 3});
  const Tensor u = make({10, 20, 30, 40, 50, 60}, {2, 3});
  fw::dual_level level;
  Tensor d = fw::make_dual(x, u);
  expect_values(fw::unpack_dual(sum(d, 1)).tangent, {2}, {60, 150});
  expect_values(fw::unpack_dual(mean(d)).tangent, {}, {35});
  expect_values(fw::unpack_dual(max(d, 1)).tangent, {2}, {20, 60});     // first of the tie
  expect_values(fw::unpack_dual(amax(d, {1})).tangent, {2}, {25, 60});  // tie shared
  expect_values(fw::unpack_dual(min(d)).tangent, {}, {10});
  expect_values(fw::unpack_dual(norm(d, 1, {1})).tangent, {2}, {60, 150});
}

BOOST_AUTO_TEST_SUITE_END()
