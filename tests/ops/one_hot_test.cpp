// one_hot: values (given and inferred num_classes, empty input, leading dimensions) and errors.
#include "xgrad/ops/one_hot.hpp"
#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;
using xgrad::testing::make;

BOOST_AUTO_TEST_SUITE(one_hot_op)

BOOST_AUTO_TEST_CASE(values) {
  Tensor i = make({2, 0, 1, 2}, {2, 2}).to(int64);
  Tensor y = one_hot(i, 4);
  BOOST_TEST(y.dtype() == int64);
  expect_values(y.to(float64), {2, 2, 4}, {0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0});
  expect_values(one_hot(i).to(float64), {2, 2, 3}, {0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1});
  BOOST_TEST(one_hot(zeros({0}, int64)).shape() == (Shape{0, 0}));
}

BOOST_AUTO_TEST_CASE(bad_input_names_op_and_shapes) {
  expect_error(
      [] {
        one_hot(make({0, 5}, {2}).to(int64), 3);
      },
      {"one_hot", "index 5", "num_classes 3"});
  expect_error([] { one_hot(make({-1}, {1}).to(int64)); }, {"one_hot", "non-negative", "-1"});
  expect_error([] { one_hot(zeros({2})); }, {"one_hot", "int64", "float32", "[2]"});
  expect_error([] { one_hot(zeros({2}, int64), -2); }, {"one_hot", "num_classes", "-2"});
}

BOOST_AUTO_TEST_SUITE_END()
