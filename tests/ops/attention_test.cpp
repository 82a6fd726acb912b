// scaled_dot_product_attention: the fused path and the plain composition against torch 1.13
// (golden files: plain, causal with L ≠ S and L = S, bool and float masks) in both dtypes; fused
// == plain in float32 within 1e-5 (forward and gradients) over several key tiles and query
// blocks, causal and not, masked and not, L ≠ S, and with dropout (same seed); every derivative
// of the fused op (gradcheck, gradgradcheck through the op-written backward, forward vs
// reverse); a row with no kept key; and the errors.
#include <cmath>
#include <optional>
#include <vector>

#include "derivative_checks.hpp"
#include "transformer_golden.hpp"
#include "xgrad/ops/attention.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_golden;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::grads_of;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::leaf;
using xgrad::testing::read_transformer_golden;
using xgrad::testing::transformer_tol;
using xgrad::testing::values_of;

namespace {

using Attention = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, double,
                             bool, std::optional<double>);

const Attention kPaths[] = {&scaled_dot_product_attention, &scaled_dot_product_attention_math};

// A float32 leaf with uniform values in [-2, 2).
Tensor leaf32(const Shape& shape, std::uint64_t seed) {
  return leaf(shape, -2, 2, seed).detach().to(float32).requires_grad_();
}

// Output and gradients (q, k, v[, mask]) of one path under a fixed seed (dropout).
std::vector<Tensor> run(Attention f, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& mask, double p, bool causal, const Tensor& gout) {
  manual_seed(99);
  Tensor y = f(q, k, v, mask, p, causal, std::nullopt);
  std::vector<Tensor> in{q, k, v};
  if (mask.defined() && mask.requires_grad()) in.push_back(mask);
  auto g = grads_of(y, gout, in);
  g.insert(g.begin(), y.detach());
  return g;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(attention_op)

BOOST_AUTO_TEST_CASE(both_paths_match_torch) {
  for (Attention f : kPaths) {
    for (Dtype d : kFloatDtypes) {
      for (const auto& c : read_transformer_golden("attention.txt")) {
        BOOST_TEST_CONTEXT(c.name << " " << dtype_name(d)
                                  << (f == kPaths[0] ? " fused" : " plain")) {
          const double tol = transformer_tol(d);
          Tensor q = c.at("q").to(d).requires_grad_(), k = c.at("k").to(d).requires_grad_(),
                 v = c.at("v").to(d).requires_grad_();
          Tensor mask;
          if (c.has("mask_bool")) mask = c.at("mask_bool").to(Dtype::boolean);
          if (c.has("mask_float")) mask = c.at("mask_float").to(d).requires_grad_();
          std::optional<double> scale;
          if (c.has("scale")) scale = c.scalar("scale");
          Tensor y = f(q, k, v, mask, 0.0, c.has("causal"), scale);
          expect_golden(y, c.at("output"), tol);
          std::vector<Tensor> in{q, k, v};
          if (c.has("mask_float")) in.push_back(mask);
          auto g = grads_of(y, c.at("grad_output").to(d), in);
          expect_golden(g[0], c.at("grad_q"), tol);
          expect_golden(g[1], c.at("grad_k"), tol);
          expect_golden(g[2], c.at("grad_v"), tol);
          if (c.has("mask_float")) expect_golden(g[3], c.at("grad_mask"), tol);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(fused_equals_plain_in_float32) {
  // L = 150, S = 200: three query blocks and two key tiles, the last of each partial.
  const std::int64_t B = 2, L = 150, S = 200, E = 16, Ev = 8;
  Tensor q = leaf32({B, L, E}, 1), k = leaf32({B, S, E}, 2), v = leaf32({B, S, Ev}, 3);
  Tensor gout = leaf({B, L, Ev}, -1, 1, 4).detach().to(float32);
  manual_seed(5);
  Tensor keep = rand({B, 1, S}) < 0.8;  // broadcast over query rows
  Tensor fmask = leaf32({L, S}, 6);
  struct Case {
    const char* name;
    Tensor mask;
    bool causal;
    double p;
  };
  const Case cases[] = {{"plain", {}, false, 0.0},
                        {"causal", {}, true, 0.0},
                        {"bool_mask", keep, false, 0.0},
                        {"float_mask", fmask, false, 0.0},
                        {"causal_dropout", {}, true, 0.25}};
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      auto fused = run(&scaled_dot_product_attention, q, k, v, c.mask, c.p, c.causal, gout);
      auto plain = run(&scaled_dot_product_attention_math, q, k, v, c.mask, c.p, c.causal, gout);
      BOOST_REQUIRE_EQUAL(fused.size(), plain.size());
      for (std::size_t i = 0; i < fused.size(); ++i)
        expect_values(fused[i], plain[i].shape(), values_of(plain[i]), 1e-5);
    }
  }
}

BOOST_AUTO_TEST_CASE(every_derivative_of_the_fused_op) {
  Tensor q = leaf({2, 3, 4}, -1, 1, 41), k = leaf({2, 5, 4}, -1, 1, 42),
         v = leaf({2, 5, 3}, -1, 1, 43);
  expect_gradcheck(
      [](const std::vector<Tensor>& t) { return scaled_dot_product_attention(t[0], t[1], t[2]); },
      {q, k, v});
  expect_gradcheck(
      [](const std::vector<Tensor>& t) {
        return scaled_dot_product_attention(t[0], t[1], t[2], {}, 0.0, true, 0.7);
      },
      {q, k, v});
  Tensor fmask = leaf({3, 5}, -1, 1, 46);
  expect_gradcheck(
      [&](const std::vector<Tensor>& t) {
        return scaled_dot_product_attention(t[0], t[1], t[2], t[3]);
      },
      {q, k, v, fmask});
  // A bool mask broadcast over the batch; key 0 is kept in every row (no empty row).
  Tensor keep = xgrad::testing::make({1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 1}, {3, 5})
                    .to(Dtype::boolean);
  expect_gradcheck(
      [&](const std::vector<Tensor>& t) {
        return scaled_dot_product_attention(t[0], t[1], t[2], keep);
      },
      {q, k, v});
}

BOOST_AUTO_TEST_CASE(a_row_with_no_kept_key) {
  // Row 1 keeps nothing: the fused path gives 0 and no gradient; the plain one NaN (as torch).
  Tensor q = leaf({2, 3}, -1, 1, 51), k = leaf({4, 3}, -1, 1, 52), v = leaf({4, 2}, -1, 1, 53);
  std::vector<double> m{1, 0, 1, 1, 0, 0, 0, 0};
  Tensor keep = xgrad::testing::make(m, {2, 4}).to(Dtype::boolean);
  Tensor y = scaled_dot_product_attention(q, k, v, keep);
  auto yv = values_of(y);
  BOOST_TEST(yv[2] == 0.0);
  BOOST_TEST(yv[3] == 0.0);
  BOOST_TEST(std::isfinite(yv[0]));
  auto g = grad({sum(y)}, {q});
  auto gq = values_of(g[0]);
  BOOST_TEST(gq[3] == 0.0);
  BOOST_TEST(gq[4] == 0.0);
  BOOST_TEST(gq[5] == 0.0);
  BOOST_TEST(std::isnan(values_of(scaled_dot_product_attention_math(q, k, v, keep))[2]));
}

BOOST_AUTO_TEST_CASE(bad_input_names_op_and_shapes) {
  Tensor q = zeros({2, 4, 8}), k = zeros({2, 6, 8}), v = zeros({2, 6, 5});
  expect_error(
      [&] {
        scaled_dot_product_attention(q, zeros({2, 6, 7}), v);
      },
      {"scaled_dot_product_attention", "[2,4,8]", "[2,6,7]", "[2,6,5]"});
  expect_error(
      [&] {
        scaled_dot_product_attention(q, k, zeros({2, 5, 5}));
      },
      {"scaled_dot_product_attention", "[2,5,5]"});
  expect_error(
      [&] {
        scaled_dot_product_attention(q, k, v, ones({3, 5}, Dtype::boolean));
      },
      {"scaled_dot_product_attention", "attn_mask of shape [3,5]",
       "does not broadcast to [2,4,6]"});
  expect_error(
      [&] {
        scaled_dot_product_attention(q, k, v, ones({4, 6}, Dtype::boolean), 0, true);
      },
      {"scaled_dot_product_attention", "is_causal"});
  expect_error([&] { scaled_dot_product_attention(q, k, v, {}, 1.0); },
               {"scaled_dot_product_attention", "dropout_p", "1"});
  expect_error([&] { scaled_dot_product_attention(q, k.to(float64), v); },
               {"scaled_dot_product_attention", "float64"});
  expect_error([&] { scaled_dot_product_attention(zeros({8}), k, v); },
               {"scaled_dot_product_attention", "[8]"});
  expect_error(
      [&] {
        scaled_dot_product_attention(q, k, v, ones({4, 6}, int64));
      },
      {"scaled_dot_product_attention", "attn_mask", "int64"});
}

BOOST_AUTO_TEST_SUITE_END()
