// masked_fill, triu and tril: values and gradients against torch 1.13 (golden files) in both
// dtypes, every derivative, -inf fills, integer and bool inputs, and the errors.
#include <vector>

#include "derivative_checks.hpp"
#include "transformer_golden.hpp"
#include "xgrad/ops/masking.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_golden;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::grads_of;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::kInf;
using xgrad::testing::leaf;
using xgrad::testing::make;
using xgrad::testing::read_transformer_golden;
using xgrad::testing::transformer_tol;

BOOST_AUTO_TEST_SUITE(masking_op)

BOOST_AUTO_TEST_CASE(matches_torch_values_and_gradients) {
  for (Dtype d : kFloatDtypes) {
    for (const auto& c : read_transformer_golden("masking.txt")) {
      BOOST_TEST_CONTEXT(c.name << " " << dtype_name(d)) {
        Tensor x = c.at("input").to(d).requires_grad_();
        Tensor y;
        if (c.name == "masked_fill") {
          y = masked_fill(x, c.at("mask").to(Dtype::boolean), c.scalar("value"));
        } else {
          const auto dg = static_cast<std::int64_t>(c.scalar("diagonal"));
          y = c.name.rfind("triu", 0) == 0 ? triu(x, dg) : tril(x, dg);
        }
        expect_golden(y, c.at("output"), transformer_tol(d));
        auto g = grads_of(y, c.at("grad_output").to(d), {x});
        expect_golden(g[0], c.at("grad_input"), transformer_tol(d));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(every_derivative_checks) {
  Tensor x = leaf({2, 3, 4}, -1, 1, 21);
  Tensor mask = make({1, 0, 0, 1}, {4}).to(Dtype::boolean);
  expect_gradcheck([&](const std::vector<Tensor>& t) { return masked_fill(t[0], mask, 0.5); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& t) { return triu(t[0], 1); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& t) { return tril(t[0], -1); }, {x});
}

BOOST_AUTO_TEST_CASE(causal_mask_with_minus_infinity) {
  Tensor s = zeros({3, 3}, float64);
  Tensor m = masked_fill(s, triu(ones({3, 3}, Dtype::boolean), 1), -kInf);
  expect_values(m, {3, 3}, {0, -kInf, -kInf, 0, 0, -kInf, 0, 0, 0});
  // tril of a rectangular all-ones matrix: the top-left aligned causal keep-mask.
  expect_values(tril(ones({2, 4}, int64), 1).to(float64), {2, 4}, {1, 1, 0, 0, 1, 1, 1, 0});
}

BOOST_AUTO_TEST_CASE(bad_input_names_op_and_shapes) {
  expect_error(
      [] {
        masked_fill(zeros({2, 4}), ones({3}, Dtype::boolean), 1.0);
      },
      {"masked_fill", "mask of shape [3]", "input of shape [2,4]"});
  expect_error([] { masked_fill(zeros({2, 4}), ones({4}), 1.0); }, {"masked_fill", "bool"});
  expect_error([] { triu(zeros({3})); }, {"triu", "at least 2 dimensions", "[3]"});
  expect_error([] { tril(zeros({})); }, {"tril", "[]"});
}

BOOST_AUTO_TEST_SUITE_END()
