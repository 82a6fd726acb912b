// dropout, dropout_mask and dropout_with_mask: the mask is reproducible with manual_seed, its
// keep rate is 1-p, survivors are scaled by 1/(1-p), p = 0 / p = 1 / eval are exact, the
// gradient is mask·scale (gradcheck with the mask held fixed), masks broadcast, and bad p or
// masks throw.
#include <cmath>

#include "test_util.hpp"
#include "xgrad/ops/dropout.hpp"
#include "xgrad/ops/indexing.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::leaf;
using xgrad::testing::tol;
using xgrad::testing::values_of;
namespace fwd = xgrad::autograd::forward_ad;

namespace {

std::vector<bool> bools(const Tensor& mask) {
  Tensor c = mask.contiguous();
  const bool* p = c.data_ptr<bool>();
  return std::vector<bool>(p, p + c.numel());
}

Tensor mask_of(const std::vector<std::int64_t>& bits, const Shape& shape) {
  return gt(from_data(bits.data(), shape), zeros({1}, int64));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dropout_ops)

BOOST_AUTO_TEST_CASE(mask_is_reproducible_with_manual_seed) {
  manual_seed(123);
  Tensor m1 = dropout_mask({4, 50}, 0.3);
  manual_seed(123);
  Tensor m2 = dropout_mask({4, 50}, 0.3);
  BOOST_TEST((m1.dtype() == boolean));
  BOOST_TEST((m1.shape() == Shape{4, 50}));
  BOOST_TEST(bools(m1) == bools(m2));
  // The next draw differs.
  BOOST_TEST(bools(dropout_mask({4, 50}, 0.3)) != bools(m1));

  // dropout itself draws the same mask: zeros exactly where the mask is false.
  for (Dtype d : kFloatDtypes) {
    manual_seed(123);
    Tensor y = dropout(ones({4, 50}, d), 0.3);
    Tensor expected = where(m1, full({4, 50}, 1.0 / 0.7, d), zeros({1}, d));
    expect_values(
        y, {4, 50},
        [&] {
          xt::xarray<double> e = to_xarray<double>(expected);
          return std::vector<double>(e.begin(), e.end());
        }(),
        d == float64 ? 1e-15 : 1e-7);
  }
}

BOOST_AUTO_TEST_CASE(keep_rate_and_expected_value) {
  // 100,000 draws: the kept fraction is 1-p within 5 standard errors, and E[dropout(x)] = x.
  manual_seed(7);
  const double p = 0.25;
  Tensor y = dropout(ones({100000}, float64), p);
  const double kept = sum(gt(y, zeros({1}, float64)).to(float64)).item() / 1e5;
  const double se = std::sqrt(p * (1 - p) / 1e5);
  BOOST_TEST(std::abs(kept - (1 - p)) < 5 * se);
  BOOST_TEST(std::abs(mean(y).item() - 1.0) < 5 * se / (1 - p));
  // Survivors are exactly 1/(1-p).
  xt::xarray<double> v = to_xarray<double>(y);
  for (double x : v) BOOST_TEST((x == 0.0 || x == 1.0 / 0.75));
}

BOOST_AUTO_TEST_CASE(eval_p0_and_p1) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = tensor({1.0, -2.0, 3.0}, d).requires_grad_();
    // Evaluation and p = 0: x itself, no copy, no node.
    BOOST_TEST(dropout(x, 0.5, false).impl() == x.impl());
    BOOST_TEST(dropout(x, 0.0, true).impl() == x.impl());
    // p = 1: zeros, and a zero gradient (not NaN from 0·inf).
    Tensor y = dropout(x, 1.0);
    expect_values(y, {3}, {0, 0, 0});
    y.sum().backward();
    expect_values(x.grad(), {3}, {0, 0, 0});
  }
  expect_values(dropout_mask({3}, 1.0).to(float64), {3}, {0, 0, 0});
  expect_values(dropout_mask({3}, 0.0).to(float64), {3}, {1, 1, 1});
  // p = 0 and p = 1 draw nothing: the generator is where the seed left it.
  manual_seed(5);
  dropout_mask({10}, 1.0);
  dropout_mask({10}, 0.0);
  Tensor after = rand({3}, float64);
  manual_seed(5);
  expect_values(after, {3}, [] {
    xt::xarray<double> r = to_xarray<double>(rand({3}, float64));
    return std::vector<double>(r.begin(), r.end());
  }());
}

BOOST_AUTO_TEST_CASE(with_mask_values_and_gradient) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = tensor({{1.0, -2.0, 3.0}, {4.0, 5.0, -6.0}}, d).requires_grad_();
    Tensor mask = mask_of({1, 0, 1, 0, 1, 1}, {2, 3});
    Tensor y = dropout_with_mask(x, mask, 0.5);
    BOOST_TEST(y.grad_fn()->name() == "dropout");
    expect_values(y, {2, 3}, {2, 0, 6, 0, 10, -12});
    y.backward(tensor({{1.0, 1.0, 2.0}, {3.0, 0.5, 1.0}}, d));
    expect_values(x.grad(), {2, 3}, {2, 0, 4, 0, 1, 2});
  }
  // p = 0.2: scale 1.25.
  expect_values(dropout_with_mask(tensor({2.0, 4.0}, float64), mask_of({1, 1}, {2}), 0.2), {2},
                {2.5, 5.0});
}

BOOST_AUTO_TEST_CASE(with_mask_gradcheck) {
  manual_seed(3);
  Tensor mask = dropout_mask({2, 3, 4}, 0.4);
  expect_gradcheck(
      [mask](const std::vector<Tensor>& in) { return dropout_with_mask(in[0], mask, 0.4); },
      {leaf({2, 3, 4})});
  // A broadcast mask [1,3,4] (one mask shared over the first axis) and a strided input.
  Tensor shared = dropout_mask({1, 3, 4}, 0.5);
  expect_gradcheck(
      [shared](const std::vector<Tensor>& in) {
        return dropout_with_mask(in[0].permute({2, 1, 0}).permute({2, 1, 0}), shared, 0.5);
      },
      {leaf({2, 3, 4})});
}

BOOST_AUTO_TEST_CASE(broadcast_mask_is_shared) {
  Tensor x = ones({2, 3}, float64);
  Tensor y = dropout_with_mask(x, mask_of({1, 0, 1}, {3}), 0.5);
  expect_values(y, {2, 3}, {2, 0, 2, 2, 0, 2});
}

BOOST_AUTO_TEST_CASE(errors) {
  Tensor x = ones({2, 3});
  expect_error([&] { dropout(x, 1.5); }, {"dropout", "between 0 and 1", "1.5"});
  expect_error([&] { dropout(x, -0.1); }, {"dropout", "between 0 and 1"});
  expect_error([&] { dropout_mask({2}, 2.0); }, {"dropout_mask", "between 0 and 1"});
  expect_error([&] { dropout(ones({2}, int64), 0.5); }, {"dropout", "int64"});
  expect_error([&] { dropout_with_mask(x, ones({2, 3}), 0.5); }, {"dropout_with_mask", "bool"});
  expect_error(
      [&] {
        dropout_with_mask(x, mask_of({1, 0}, {2}), 0.5);
      },
      {"dropout_with_mask", "[2]", "[2,3]"});
  expect_error(
      [&] {
        dropout_with_mask(x, mask_of({1, 0, 1, 1, 1, 1}, {2, 1, 3}), 0.5);
      },
      {"dropout_with_mask", "[2,1,3]", "does not broadcast"});
}

// f(x) = Σ dropout_with_mask(x, m, p)³ with a broadcast mask: y = x·m·s (s = 1/(1-p)), so
// ∂f/∂x = 3y²·m·s and H = diag(6x·(m·s)³). H·u by reverse over reverse (create_graph: the
// backward's dropout is recorded again) and by forward over reverse (its jvp).
BOOST_AUTO_TEST_CASE(create_graph_hessian_through_dropout) {
  Tensor x = leaf({2, 3}, -1, 1, 51);
  Tensor u = leaf({2, 3}, -1, 1, 52).detach();
  Tensor mask = mask_of({1, 0, 1}, {3});
  const double p = 0.2, s = 1.25;
  auto f = [&](const Tensor& a) { return sum(pow(dropout_with_mask(a, mask, p), 3.0)); };
  const auto xv = values_of(x), uv = values_of(u);
  std::vector<double> hu(6);
  for (std::size_t i = 0; i < 6; ++i) hu[i] = i % 3 == 1 ? 0.0 : 6 * xv[i] * s * s * s * uv[i];
  Tensor g = grad({f(x)}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  BOOST_TEST(g.grad_fn() != nullptr);
  BOOST_TEST_CONTEXT("reverse over reverse") {
    expect_values(grad({g}, {x}, {u})[0], {2, 3}, hu, 1e-12);
  }
  fwd::dual_level level;
  Tensor gd = grad({f(fwd::make_dual(x, u))}, {x})[0];
  BOOST_TEST_CONTEXT("forward over reverse") {
    expect_values(fwd::unpack_dual(gd).tangent, {2, 3}, hu, 1e-12);
  }
}

BOOST_AUTO_TEST_SUITE_END()
