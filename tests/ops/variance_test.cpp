// var and std: values and gradients against torch 1.13 (golden files, corrections 0, 1, 2,
// keepdim) in both dtypes, every derivative, a large offset in float32, std's gradient at a
// constant slice (0, as torch), the correction > N limit, and the errors.
#include <cmath>
#include <vector>

#include "derivative_checks.hpp"
#include "transformer_golden.hpp"
#include "xgrad/ops/variance.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_golden;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::grads_of;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::kInf;
using xgrad::testing::kNaN;
using xgrad::testing::leaf;
using xgrad::testing::read_transformer_golden;
using xgrad::testing::transformer_tol;

BOOST_AUTO_TEST_SUITE(variance_op)

BOOST_AUTO_TEST_CASE(matches_torch_values_and_gradients) {
  for (Dtype d : kFloatDtypes) {
    for (const auto& c : read_transformer_golden("variance.txt")) {
      BOOST_TEST_CONTEXT(c.name << " " << dtype_name(d)) {
        const double tol = transformer_tol(d);
        Tensor x = c.at("input").to(d).requires_grad_();
        const bool is_var = c.name.rfind("var", 0) == 0;
        const Shape dim = c.shape_list("dim");
        const double corr = c.scalar("correction");
        const bool keep = c.scalar("keepdim") != 0;
        Tensor y = is_var ? var(x, dim, corr, keep) : xgrad::std(x, dim, corr, keep);
        expect_golden(y, c.at("output"), tol);
        auto g = grads_of(y, c.at("grad_output").to(d), {x});
        expect_golden(g[0], c.at("grad_input"), tol);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(every_derivative_checks) {
  Tensor x = leaf({3, 4}, -1, 1, 11);
  expect_gradcheck([](const std::vector<Tensor>& t) { return var(t[0], {1}); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& t) { return var(t[0], {}, 0.0, true); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& t) { return xgrad::std(t[0], {0}, 2.0); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& t) { return xgrad::std(t[0]); }, {x});
}

BOOST_AUTO_TEST_CASE(large_offset_in_float32) {
  // 1e4 + 0.25k, k = 0..7: exact float32 numbers with variance (unbiased) 0.25²·6 = 0.375. A
  // one-pass float32 Σx² − N·mean² is off by whole units here (Σx² ≈ 8e8, spacing 64).
  std::vector<double> v;
  for (int k = 0; k < 8; ++k) v.push_back(1e4 + 0.25 * k);
  Tensor x = xgrad::testing::make(v, {8}, float32);
  expect_values(var(x), {}, {0.375}, 1e-7);
  expect_values(xgrad::std(x), {}, {std::sqrt(0.375)}, 1e-7);
  // 1e7 + k, k = 0..7 (exact in float32): variance 6. torch 1.13 gives 6.2857 here.
  std::vector<double> w;
  for (int k = 0; k < 8; ++k) w.push_back(1e7 + k);
  expect_values(var(xgrad::testing::make(w, {8}, float32)), {}, {6.0}, 1e-7);
  expect_values(var(xgrad::testing::make(w, {2, 4}, float32), {1}), {2}, {5.0 / 3, 5.0 / 3}, 1e-7);
}

BOOST_AUTO_TEST_CASE(std_of_a_constant_slice_has_gradient_zero) {
  // 0, as torch 1.13 (the subgradient of least norm); the second derivative is finite too.
  Tensor x = full({2, 3}, 2.0, float64).requires_grad_();
  Tensor y = xgrad::std(x, {1});
  expect_values(y, {2}, {0.0, 0.0});
  auto g = grad({sum(y)}, {x}, {}, true);
  expect_values(g[0], {2, 3}, {0, 0, 0, 0, 0, 0});
  auto gg = grad({sum(grad({sum(y)}, {x}, {}, true, true)[0])}, {x}, {}, false, false, true);
  BOOST_TEST((!gg[0].defined() || xgrad::testing::all_finite(gg[0])));
}

BOOST_AUTO_TEST_CASE(correction_at_or_above_the_count) {
  // N − correction <= 0: inf for a positive sum of squares, NaN for zero (torch's values).
  expect_values(var(xgrad::testing::make({1.0, 2.0}, {2}), {}, 2.0), {}, {kInf});
  expect_values(var(xgrad::testing::make({1.0}, {1})), {}, {kNaN});
}

BOOST_AUTO_TEST_CASE(bad_input_names_op_and_shapes) {
  expect_error([] { var(zeros({2, 3}), {2}); }, {"var", "axis 2", "[2,3]"});
  expect_error([] { var(zeros({2, 3}), {1, -1}); }, {"var", "twice"});
  expect_error([] { var(zeros({2, 3}, int64)); }, {"var", "int64", "[2,3]"});
  expect_error([] { xgrad::std(zeros({2, 3}), {}, -1.0); }, {"std", "correction"});
}

BOOST_AUTO_TEST_SUITE_END()
