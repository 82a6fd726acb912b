// multinomial: reproducible by seed, frequencies within a few standard deviations of the
// probabilities (with and without replacement), weight-0 categories never drawn, draws
// without replacement distinct, and errors.
#include <cmath>
#include <set>
#include <vector>

#include "test_util.hpp"
#include "xgrad/ops/sampling.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::make;
using xgrad::testing::values_of;

BOOST_AUTO_TEST_SUITE(sampling_op)

BOOST_AUTO_TEST_CASE(same_seed_same_samples) {
  Tensor p = make({0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, {2, 3});
  manual_seed(7);
  Tensor a = multinomial(p, 5, true);
  manual_seed(7);
  Tensor b = multinomial(p, 5, true);
  BOOST_TEST(a.shape() == (Shape{2, 5}));
  BOOST_TEST(a.dtype() == int64);
  BOOST_TEST(values_of(a) == values_of(b));
  Tensor c = multinomial(p, 5, true);  // the generator moved on
  BOOST_TEST(values_of(a) != values_of(c));
}

BOOST_AUTO_TEST_CASE(frequencies_follow_the_weights) {
  // Unnormalised weights [1, 0, 3, 6]: probabilities 0.1, 0, 0.3, 0.6. n = 40000 draws: each
  // count within 5 standard deviations √(n·p·(1−p)) of n·p (the test fails for a wrong CDF).
  manual_seed(3);
  const int n = 40000;
  Tensor s = multinomial(make({1, 0, 3, 6}, {4}, float32), n, true);
  std::vector<double> count(4, 0);
  for (double v : values_of(s)) count.at(static_cast<std::size_t>(v)) += 1;
  const double probs[] = {0.1, 0, 0.3, 0.6};
  for (std::size_t c = 0; c < 4; ++c) {
    const double sd = std::sqrt(n * probs[c] * (1 - probs[c]));
    BOOST_TEST(std::abs(count[c] - n * probs[c]) <= 5 * sd + 1e-9, "category " << c);
  }
}

BOOST_AUTO_TEST_CASE(without_replacement) {
  // Draws are distinct; the first draw of [0.7, 0.1, 0.1, 0.1] (4 of 4 without replacement)
  // is category 0 about 70% of the time; a zero-weight category is never drawn.
  manual_seed(5);
  int first0 = 0;
  const int rounds = 4000;
  for (int r = 0; r < rounds; ++r) {
    auto v = values_of(multinomial(make({0.7, 0.1, 0.1, 0.1}, {4}), 4));
    BOOST_REQUIRE_EQUAL(std::set<double>(v.begin(), v.end()).size(), 4u);
    first0 += v[0] == 0;
  }
  const double sd = std::sqrt(rounds * 0.7 * 0.3);
  BOOST_TEST(std::abs(first0 - rounds * 0.7) <= 5 * sd);
  auto z = values_of(multinomial(make({0.5, 0, 0.5}, {3}), 2));
  BOOST_TEST((std::set<double>(z.begin(), z.end()) == std::set<double>{0, 2}));
}

BOOST_AUTO_TEST_CASE(bad_input_names_op_and_shapes) {
  expect_error(
      [] {
        multinomial(make({1, 0, 1}, {3}), 3);
      },
      {"multinomial", "cannot draw 3 samples without replacement from 2 categories"});
  expect_error([] { multinomial(make({1, -1}, {2}), 1); }, {"multinomial", "non-negative", "-1"});
  expect_error([] { multinomial(make({0, 0}, {2}), 1); }, {"multinomial", "sums to 0"});
  expect_error([] { multinomial(zeros({1, 2, 3}), 1); }, {"multinomial", "[1,2,3]"});
  expect_error([] { multinomial(make({1, 1}, {2}), 0); }, {"multinomial", "num_samples"});
  expect_error([] { multinomial(zeros({2}, int64), 1); }, {"multinomial", "int64"});
}

BOOST_AUTO_TEST_SUITE_END()
