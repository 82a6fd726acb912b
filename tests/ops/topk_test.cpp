// topk: values, indices and gradients against torch 1.13 (golden files) in both dtypes, every
// derivative, ties (lower index first), NaN order, sorted = false, int64 input, and errors.
#include <vector>

#include "derivative_checks.hpp"
#include "transformer_golden.hpp"
#include "xgrad/ops/topk.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_golden;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::grads_of;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::kNaN;
using xgrad::testing::leaf;
using xgrad::testing::make;
using xgrad::testing::read_transformer_golden;
using xgrad::testing::transformer_tol;

BOOST_AUTO_TEST_SUITE(topk_op)

BOOST_AUTO_TEST_CASE(matches_torch_values_indices_and_gradients) {
  for (Dtype d : kFloatDtypes) {
    for (const auto& c : read_transformer_golden("topk.txt")) {
      BOOST_TEST_CONTEXT(c.name << " " << dtype_name(d)) {
        Tensor x = c.at("input").to(d).requires_grad_();
        TopK r = topk(x, static_cast<std::int64_t>(c.scalar("k")),
                      static_cast<std::int64_t>(c.scalar("dim")), c.scalar("largest") != 0);
        expect_golden(r.values, c.at("values"), transformer_tol(d));
        BOOST_TEST(r.indices.dtype() == int64);
        expect_golden(r.indices.to(float64), c.at("indices"), 0.0);
        auto g = grads_of(r.values, c.at("grad_output").to(d), {x});
        expect_golden(g[0], c.at("grad_input"), transformer_tol(d));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(every_derivative_checks) {
  Tensor x = leaf({3, 5}, -1, 1, 31);
  expect_gradcheck([](const std::vector<Tensor>& t) { return topk(t[0], 2).values; }, {x});
  expect_gradcheck([](const std::vector<Tensor>& t) { return topk(t[0], 2, 0, false).values; },
                   {x});
}

BOOST_AUTO_TEST_CASE(ties_nan_and_order) {
  Tensor x = make({1, 3, 3, kNaN, 0}, {5});
  TopK a = topk(x, 3);
  expect_values(a.values, {3}, {kNaN, 3, 3});
  expect_values(a.indices.to(float64), {3}, {3, 1, 2});
  TopK s = topk(x, 2, -1, /*largest=*/false);
  expect_values(s.indices.to(float64), {2}, {4, 0});
  TopK u = topk(make({5, 1, 4, 2}, {4}), 2, -1, true, /*sorted=*/false);
  expect_values(u.indices.to(float64), {2}, {0, 2});
  TopK i = topk(make({5, 1, 4, 2}, {4}).to(int64), 1);
  BOOST_TEST(i.values.dtype() == int64);
  expect_values(i.values.to(float64), {1}, {5});
  BOOST_TEST(topk(x, 0).values.shape() == (Shape{0}));
}

BOOST_AUTO_TEST_CASE(bad_input_names_op_and_shapes) {
  expect_error(
      [] {
        topk(zeros({2, 3}), 5, 1);
      },
      {"topk", "k 5", "dimension 1 of size 3", "[2,3]"});
  expect_error([] { topk(zeros({2, 3}), 1, 2); }, {"topk", "axis 2", "[2,3]"});
  expect_error([] { topk(zeros({2}, Dtype::boolean), 1); }, {"topk", "bool"});
}

BOOST_AUTO_TEST_SUITE_END()
