// BatchNorm1d and BatchNorm2d modules: running statistics are buffers (not parameters) updated
// in training and used after eval(), torch's numbers for a BatchNorm2d, affine and
// track_running_stats options, gradcheck through the module, and the shape errors.
#include <cmath>
#include <memory>

#include "test_util.hpp"
#include "xgrad/nn/batchnorm.hpp"
#include "xgrad/ops/normalization.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::leaf;
using xgrad::testing::values_of;

namespace {

nn::BatchNormOptions options(Dtype d) {
  nn::BatchNormOptions o;
  o.dtype = d;
  return o;
}

// x[k] = 0.5·sin(1.3k) + 0.1k as [2,2,3,2]: the input the torch script used.
Tensor input4d() {
  std::vector<double> v(24);
  for (std::size_t k = 0; k < v.size(); ++k)
    v[k] = 0.5 * std::sin(1.3 * static_cast<double>(k)) + 0.1 * static_cast<double>(k);
  return from_data(v.data(), {2, 2, 3, 2});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(batchnorm)

BOOST_AUTO_TEST_CASE(buffers_are_not_parameters) {
  nn::BatchNorm2d bn(3);
  auto named = bn.named_parameters();
  BOOST_REQUIRE_EQUAL(named.size(), 2u);
  BOOST_TEST(named[0].first == "weight");
  BOOST_TEST(named[1].first == "bias");
  expect_values(bn.weight, {3}, {1, 1, 1});
  expect_values(bn.bias, {3}, {0, 0, 0});
  auto buffers = bn.named_buffers();
  BOOST_REQUIRE_EQUAL(buffers.size(), 3u);
  BOOST_TEST(buffers[0].first == "running_mean");
  BOOST_TEST(buffers[1].first == "running_var");
  BOOST_TEST(buffers[2].first == "num_batches_tracked");
  expect_values(bn.running_mean, {3}, {0, 0, 0});
  expect_values(bn.running_var, {3}, {1, 1, 1});
  BOOST_TEST((bn.num_batches_tracked.dtype() == int64));
  BOOST_TEST(!bn.running_mean.requires_grad());
  BOOST_TEST(!bn.running_var.requires_grad());
  BOOST_TEST(bn.type_name() == "BatchNorm2d");
  BOOST_TEST(bn.num_features() == 3);
}

BOOST_AUTO_TEST_CASE(batchnorm2d_matches_torch_in_train_and_eval) {
  // torch.nn.BatchNorm2d(2) (float64) with weight [0.8, 1.2], bias [0, -0.4]: called on x,
  // then on 2x, then eval() and called on x.
  nn::BatchNorm2d bn(2, options(float64));
  {
    no_grad guard;
    bn.weight.copy_(tensor({0.8, 1.2}, float64));
    bn.bias.copy_(tensor({0.0, -0.4}, float64));
  }
  Tensor x = input4d();
  Tensor y = bn(x);
  expect_values(
      y, {2, 2, 3, 2},
      {-0.9804867102098543, -0.3134007949015116,   -0.45561560514466826, -1.0308044075679343,
       -1.028332555905882,  -0.2838396154430493,   -1.0457961890999283,  -1.4872001505732169,
       -2.3589922990183747, -2.114242417808637,    -0.8417569795414258,  -0.1359774556316829,
       0.457247269472649,   -0.022547647684864905, 0.27803660583289974,  1.0866250976197112,
       1.3866154960778359,  0.9065028678546687,    -0.6641463884573434,  0.042507496017858644,
       1.314780028695397,   1.5585416453479846,    0.6864336832696829,   0.24584902679968548});
  expect_values(bn.running_mean, {2}, {0.08551022523314124, 0.1449997730839734});
  expect_values(bn.running_var, {2}, {0.9531021726914204, 0.9463325219486355});
  BOOST_TEST(bn.num_batches_tracked.item() == 1.0);
  bn(x * 2.0);
  expect_values(bn.running_mean, {2}, {0.2479796531761096, 0.4204993419435229});
  expect_values(bn.running_var, {2}, {1.0702006461879598, 1.0370293575483138});
  BOOST_TEST(bn.num_batches_tracked.item() == 2.0);

  bn.eval();
  Tensor ye = bn(x);
  expect_values(
      ye, {2, 2, 3, 2},
      {-0.19176590828697163, 0.25813147122264096, 0.1622186824984495,  -0.22570126753360512,
       -0.2240341965315442,  0.27806817932631644, 0.39984854132916975, 0.11736548114010252,
       -0.44055092975847204, -0.2839195864549951, 0.5304264820487439,  0.982100633470858,
       0.7778734365822776,   0.4542892160528689,  0.6570098325074795,  1.2023396546614489,
       1.4046597622325567,   1.0808612703887663,  0.6440910335039686,  1.0963247450338243,
       1.9105345614244162,   2.0665334500588224,  1.5084149295071263,  1.2264561957962024});
  // Evaluation changes no statistic.
  expect_values(bn.running_mean, {2}, {0.2479796531761096, 0.4204993419435229});
  BOOST_TEST(bn.num_batches_tracked.item() == 2.0);
  // One sample is fine in eval mode.
  BOOST_TEST((bn(slice(x, 0, 0, 1)).shape() == Shape{1, 2, 3, 2}));
  bn.reset_running_stats();
  expect_values(bn.running_mean, {2}, {0, 0});
  expect_values(bn.running_var, {2}, {1, 1});
  BOOST_TEST(bn.num_batches_tracked.item() == 0.0);
}

BOOST_AUTO_TEST_CASE(batchnorm1d_2d_and_3d_inputs) {
  manual_seed(1);
  nn::BatchNorm1d bn(3, options(float64));
  Tensor x2 = leaf({6, 3}, -2, 3).detach();
  Tensor y2 = bn(x2);
  expect_values(mean(y2, 0), {3}, {0, 0, 0}, 1e-12);
  // Running mean after one batch: 0.1·batch mean.
  expect_values(bn.running_mean, {3}, values_of(mean(x2, 0) * 0.1), 1e-15);
  Tensor x3 = leaf({4, 3, 5}, -1, 1, 2).detach();
  Tensor y3 = bn(x3);
  BOOST_TEST((y3.shape() == Shape{4, 3, 5}));
  expect_values(mean(y3, Shape{0, 2}), {3}, {0, 0, 0}, 1e-12);
  // The same as the functional op with this module's state.
  Tensor rm = zeros({3}, float64), rv = ones({3}, float64);
  batch_norm(x2, rm, rv, Tensor(), Tensor(), true);
  Tensor expected = batch_norm(x3, rm, rv, bn.weight, bn.bias, true);
  expect_values(y3, {4, 3, 5}, values_of(expected));
  expect_values(bn.running_var, {3}, values_of(rv), 1e-15);
}

BOOST_AUTO_TEST_CASE(options_affine_and_tracking) {
  nn::BatchNormOptions o = options(float64);
  o.affine = false;
  o.track_running_stats = false;
  o.momentum = 0.5;
  nn::BatchNorm1d bn(2, o);
  BOOST_TEST(bn.parameters().empty());
  BOOST_TEST(bn.named_buffers().empty());
  BOOST_TEST(!bn.running_mean.defined());
  // Without running statistics, eval() still normalises with the batch's statistics.
  Tensor x = tensor({{1.0, 10.0}, {3.0, 20.0}}, float64);
  bn.eval();
  // Per column: ±(x − μ)/√(σ² + eps) = ±1/√(1 + 1e-5) and ±5/√(25 + 1e-5).
  expect_values(bn(x), {2, 2},
                {-0.9999950000374997, -0.9999998000000601, 0.9999950000374997, 0.9999998000000601});
  // Momentum 0.5.
  nn::BatchNormOptions m = options(float64);
  m.momentum = 0.5;
  nn::BatchNorm1d bm(2, m);
  bm(x);
  expect_values(bm.running_mean, {2}, {1.0, 7.5});
  expect_values(bm.running_var, {2}, {0.5 + 0.5 * 2.0, 0.5 + 0.5 * 50.0});
}

BOOST_AUTO_TEST_CASE(gradcheck_through_module) {
  auto bn = std::make_shared<nn::BatchNorm2d>(2, options(float64));
  for (bool training : {true, false}) {
    BOOST_TEST_CONTEXT("training " << training) {
      bn->train(training);
      expect_gradcheck(
          [bn](const std::vector<Tensor>& in) {
            bn->weight = in[1];
            bn->bias = in[2];
            return (*bn)(in[0]);
          },
          {leaf({2, 2, 2, 3}, -2, 2), leaf({2}, 0.5, 1.5, 2), leaf({2}, -1, 1, 3)});
    }
  }
}

BOOST_AUTO_TEST_CASE(errors) {
  nn::BatchNorm1d b1(3);
  nn::BatchNorm2d b2(3);
  expect_error([&] { b1(zeros({2, 3, 4, 5})); }, {"BatchNorm1d", "2D or 3D", "[2,3,4,5]"});
  expect_error([&] { b2(zeros({2, 3, 4})); }, {"BatchNorm2d", "4D", "[2,3,4]"});
  expect_error([&] { b1(zeros({2, 4})); }, {"BatchNorm1d", "3 channels", "[2,4]"});
  expect_error([&] { b1(zeros({1, 3})); }, {"batch_norm", "more than 1 value per channel"});
  BOOST_TEST(b1.num_batches_tracked.item() == 0.0);  // a failed call counts nothing
  expect_error([&] { b1(zeros({2, 3}, float64)); }, {"batch_norm", "float32", "float64"});
  expect_error([] { nn::BatchNorm2d(0); }, {"BatchNorm", "positive"});
}

// A gradient penalty through the module (create_graph): in evaluation, with L = ½Σy²,
// y = x̂·w + b and x̂ = (x − rm)·s, s = 1/√(rv + eps), ∂L/∂x = y·w·s, and the derivative of
// Σ v·∂L/∂x w.r.t. w_c is Σ_{j in channel c} v_j·s_c·(2·w_c·x̂_j + b_c).
BOOST_AUTO_TEST_CASE(mixed_second_derivative_in_evaluation) {
  auto bn = std::make_shared<nn::BatchNorm2d>(2, options(float64));
  {
    no_grad guard;
    bn->running_mean.copy_(tensor({0.3, -0.2}, float64));
    bn->running_var.copy_(tensor({0.5, 2.0}, float64));
  }
  bn->weight = tensor({1.5, -0.5}, float64).requires_grad_();
  bn->bias = tensor({0.2, 0.7}, float64).requires_grad_();
  bn->eval();
  Tensor x = input4d().requires_grad_();
  Tensor y = (*bn)(x);
  Tensor gx = grad({sum(mul(y, y)) * 0.5}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  Tensor v = ones({2, 2, 3, 2}, float64) * 0.25 + input4d();
  Tensor gw = grad({gx}, {bn->weight}, {v})[0];
  const auto xv = values_of(x), vv = values_of(v);
  const double rm[2] = {0.3, -0.2}, rv[2] = {0.5, 2.0}, w[2] = {1.5, -0.5}, b[2] = {0.2, 0.7};
  double want[2] = {0, 0};
  for (std::size_t k = 0; k < xv.size(); ++k) {
    const std::size_t c = (k / 6) % 2;  // [2,2,3,2]: 6 elements per (n, c)
    const double s = 1 / std::sqrt(rv[c] + 1e-5);
    want[c] += vv[k] * s * (2 * w[c] * (xv[k] - rm[c]) * s + b[c]);
  }
  expect_values(gw, {2}, {want[0], want[1]}, 1e-13);
}

BOOST_AUTO_TEST_SUITE_END()
