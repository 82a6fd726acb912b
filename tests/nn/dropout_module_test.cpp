// nn::Dropout: active in training (same mask as the op for the same seed), the identity after
// eval(), p = 0 and p = 1, and inside a Sequential whose train/eval it follows.
#include <memory>

#include "test_util.hpp"
#include "xgrad/nn/dropout.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/sequential.hpp"
#include "xgrad/ops/dropout.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;
using xgrad::testing::values_of;

namespace {}  // namespace

BOOST_AUTO_TEST_SUITE(dropout_module)

BOOST_AUTO_TEST_CASE(training_matches_the_op_and_eval_is_identity) {
  nn::Dropout drop(0.4);
  BOOST_TEST(drop.p() == 0.4);
  BOOST_TEST(drop.type_name() == "Dropout");
  BOOST_TEST(drop.parameters().empty());
  Tensor x = uniform({8, 16}, 1.0, 2.0, float64);
  manual_seed(17);
  Tensor y = drop(x);
  manual_seed(17);
  Tensor expected = dropout(x, 0.4, true);
  expect_values(y, {8, 16}, values_of(expected), 0.0);
  // Some zeros and some scaled survivors.
  xt::xarray<double> v = to_xarray<double>(y);
  BOOST_TEST(xt::sum(xt::equal(v, 0.0))() > 0u);
  BOOST_TEST(xt::amax(v)() > 2.0);

  drop.eval();
  BOOST_TEST(!drop.is_training());
  BOOST_TEST(drop(x).impl() == x.impl());
  drop.train();
  BOOST_TEST(drop(x).impl() != x.impl());
}

BOOST_AUTO_TEST_CASE(p_zero_and_one) {
  Tensor x = tensor({1.0, 2.0}, float64);
  nn::Dropout keep_all(0.0);
  BOOST_TEST(keep_all(x).impl() == x.impl());
  nn::Dropout drop_all(1.0);
  expect_values(drop_all(x), {2}, {0, 0});
  expect_error([] { nn::Dropout(1.2); }, {"Dropout", "between 0 and 1"});
}

BOOST_AUTO_TEST_CASE(follows_sequential_train_eval) {
  manual_seed(3);
  nn::LinearOptions lo;
  lo.dtype = float64;
  auto lin = std::make_shared<nn::Linear>(4, 4, lo);
  auto drop = std::make_shared<nn::Dropout>(0.5);
  nn::Sequential seq{lin, drop};
  Tensor x = ones({3, 4}, float64);
  seq.eval();
  BOOST_TEST(!drop->is_training());
  expect_values(seq(x), {3, 4}, values_of((*lin)(x)));
  seq.train();
  Tensor y = seq(x);
  y.sum().backward();
  // Dropped units pass no gradient: weight rows of dropped outputs see only the kept samples.
  BOOST_TEST(lin->weight.grad().defined());
}

BOOST_AUTO_TEST_SUITE_END()
