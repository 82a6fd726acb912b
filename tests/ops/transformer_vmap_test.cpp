// The batching rules of the transformer ops: func::vmap(op) against the loop it replaces (the
// op on each sample, stacked), with mapped and shared inputs, and vmap(grad) (per-sample
// gradients) of layer_norm and attention against one grad call per sample.
#include <vector>

#include "test_util.hpp"
#include "xgrad/func.hpp"
#include "xgrad/ops/attention.hpp"
#include "xgrad/ops/layer_norm.hpp"
#include "xgrad/ops/masking.hpp"
#include "xgrad/ops/one_hot.hpp"
#include "xgrad/ops/sampling.hpp"
#include "xgrad/ops/topk.hpp"
#include "xgrad/ops/variance.hpp"

using namespace xgrad;
using xgrad::testing::expect_values;
using xgrad::testing::values_of;
namespace xf = xgrad::func;

namespace {

Tensor randu(const Shape& s, std::uint64_t seed) {
  manual_seed(seed);
  return uniform(s, -1.0, 1.0, float64);
}

// f on each sample of the mapped inputs (dimension 0; std::nullopt: shared), stacked.
Tensor loop(const xf::Fn& f, const std::vector<Tensor>& in, const xf::InDims& dims) {
  std::int64_t B = 0;
  for (std::size_t i = 0; i < in.size(); ++i)
    if (dims[i]) B = in[i].shape()[0];
  std::vector<Tensor> out;
  for (std::int64_t b = 0; b < B; ++b) {
    std::vector<Tensor> args;
    for (std::size_t i = 0; i < in.size(); ++i)
      args.push_back(dims[i] ? select(in[i], 0, b) : in[i]);
    out.push_back(f(args));
  }
  return stack(out, 0);
}

void expect_same(const xf::Fn& f, const std::vector<Tensor>& in, const xf::InDims& dims) {
  Tensor mapped = xf::vmap(f, dims)(in);
  Tensor looped = loop(f, in, dims);
  expect_values(mapped, looped.shape(), values_of(looped), 1e-12);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(transformer_vmap)

BOOST_AUTO_TEST_CASE(rules_match_the_loop) {
  Tensor x = randu({3, 4, 5}, 1);
  Tensor w = randu({5}, 2), b = randu({5}, 3), wb = randu({3, 5}, 4);
  expect_same([](const std::vector<Tensor>& t) { return layer_norm(t[0], {5}, t[1], t[2]); },
              {x, w, b}, {0, std::nullopt, std::nullopt});
  expect_same([](const std::vector<Tensor>& t) { return layer_norm(t[0], {4, 5}); }, {x}, {0});
  expect_same([](const std::vector<Tensor>& t) { return layer_norm(t[0], {5}, t[1]); }, {x, wb},
              {0, 0});
  expect_same([](const std::vector<Tensor>& t) { return var(t[0], {-1}, 1.0, true); }, {x}, {0});
  expect_same([](const std::vector<Tensor>& t) { return xgrad::std(t[0]); }, {x}, {0});
  Tensor mask = randu({3, 5}, 5) > 0.0;
  expect_same([](const std::vector<Tensor>& t) { return masked_fill(t[0], t[1], -2.0); }, {x, mask},
              {0, 0});
  expect_same([](const std::vector<Tensor>& t) { return masked_fill(t[0], t[1], -2.0); },
              {x, mask[0]}, {0, std::nullopt});
  expect_same([](const std::vector<Tensor>& t) { return triu(t[0], 1); }, {x}, {0});
  expect_same([](const std::vector<Tensor>& t) { return tril(t[0], -1); }, {x}, {0});
  expect_same([](const std::vector<Tensor>& t) { return topk(t[0], 2, 0).values; }, {x}, {0});
  expect_same([](const std::vector<Tensor>& t) { return topk(t[0], 3).indices.to(float64); }, {x},
              {0});
  Tensor idx = (randu({3, 4}, 6) * 2.0 + 2.0).to(int64);
  expect_same([](const std::vector<Tensor>& t) { return one_hot(t[0], 4).to(float64); }, {idx},
              {0});
  Tensor q = randu({3, 2, 4, 5}, 7), k = randu({3, 2, 6, 5}, 8), v = randu({3, 2, 6, 3}, 9);
  for (bool causal : {false, true})
    expect_same(
        [causal](const std::vector<Tensor>& t) {
          return scaled_dot_product_attention(t[0], t[1], t[2], {}, 0.0, causal);
        },
        {q, k, v}, {0, 0, 0});
  Tensor am = randu({3, 4, 6}, 10);
  expect_same(
      [](const std::vector<Tensor>& t) {
        return scaled_dot_product_attention(t[0], t[1], t[2], t[3]);
      },
      {q, select(k, 0, 0), v, am}, {0, std::nullopt, 0, 0});
}

BOOST_AUTO_TEST_CASE(multinomial_draws_per_row) {
  // Each sample's rows draw on their own: weight 0 is never drawn, shapes as the loop's.
  Tensor p = xgrad::testing::make({1, 0, 1, 0, 1, 0}, {2, 3});
  Tensor s = xf::vmap([](const Tensor& t) { return multinomial(t, 4, true); })(p);
  BOOST_TEST(s.shape() == (Shape{2, 4}));
  auto vals = values_of(s);
  for (std::size_t i = 0; i < 4; ++i) BOOST_TEST((vals[i] == 0 || vals[i] == 2));
  for (std::size_t i = 4; i < 8; ++i) BOOST_TEST(vals[i] == 1);
}

BOOST_AUTO_TEST_CASE(per_sample_gradients) {
  Tensor x = randu({3, 4, 5}, 11), w = randu({5}, 12), b = randu({5}, 13);
  xf::Fn loss = [](const std::vector<Tensor>& t) {
    return sum(mul(layer_norm(t[0], {5}, t[1], t[2]), t[0]));
  };
  auto mapped = xf::vmap(xf::grad(loss, {1, 2}), {0, std::nullopt, std::nullopt})({x, w, b});
  for (std::int64_t s = 0; s < 3; ++s) {
    auto one = xf::grad(loss, {1, 2})({select(x, 0, s), w, b});
    for (std::size_t i = 0; i < 2; ++i)
      expect_values(select(mapped[i], 0, s), one[i].shape(), values_of(one[i]), 1e-12);
  }
  Tensor q = randu({3, 4, 5}, 14), k = randu({6, 5}, 15), v = randu({6, 2}, 16);
  xf::Fn att = [](const std::vector<Tensor>& t) {
    return sum(scaled_dot_product_attention(t[0], t[1], t[2], {}, 0.0, true));
  };
  auto g = xf::vmap(xf::grad(att, {1}), {0, std::nullopt, std::nullopt})({q, k, v});
  for (std::int64_t s = 0; s < 3; ++s) {
    auto one = xf::grad(att, {1})({select(q, 0, s), k, v});
    expect_values(select(g[0], 0, s), one[0].shape(), values_of(one[0]), 1e-12);
  }
}

BOOST_AUTO_TEST_SUITE_END()
