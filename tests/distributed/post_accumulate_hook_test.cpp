// Tensor::register_post_accumulate_grad_hook, which DistributedDataParallel starts its
// all-reduces from: it runs once per backward, after .grad() holds the accumulated sum.
#include "test_util.hpp"

using namespace xgrad;

BOOST_AUTO_TEST_SUITE(post_accumulate_grad_hook)

BOOST_AUTO_TEST_CASE(sees_the_accumulated_gradient_once_per_backward) {
  Tensor w = tensor({1.0, 2.0}, float64).requires_grad_();
  std::vector<std::vector<double>> seen;
  w.register_post_accumulate_grad_hook([&](const Tensor& leaf) {
    const double* p = leaf.grad().data_ptr<double>();
    seen.push_back({p[0], p[1]});
  });
  // w used twice: the engine sums both paths before the accumulator runs (d/dw = 3 + 2w).
  ((w * 3.0).sum() + (w * w).sum()).backward();
  BOOST_REQUIRE(seen.size() == 1u);
  BOOST_TEST(seen[0][0] == 5.0);
  BOOST_TEST(seen[0][1] == 7.0);
  (w * 2.0).sum().backward();  // accumulates into the existing .grad(): the hook sees the sum
  BOOST_REQUIRE(seen.size() == 2u);
  BOOST_TEST(seen[1][0] == 7.0);
  BOOST_TEST(seen[1][1] == 9.0);
}

BOOST_AUTO_TEST_CASE(runs_after_the_pre_hooks_and_is_refused_on_non_leaves) {
  Tensor w = tensor({1.0}, float64).requires_grad_();
  std::vector<int> order;
  w.register_hook([&](const Tensor&) {
    order.push_back(1);
    return Tensor();
  });
  w.register_post_accumulate_grad_hook([&](const Tensor& leaf) {
    order.push_back(2);
    BOOST_TEST(leaf.grad().item() == 4.0);
  });
  (w * 4.0).sum().backward();
  const std::vector<int> expected = {1, 2};
  BOOST_TEST(order == expected, boost::test_tools::per_element());
  Tensor y = w * 2.0;
  BOOST_CHECK_THROW(y.register_post_accumulate_grad_hook([](const Tensor&) {}), Error);
  Tensor c = tensor({1.0}, float64);
  BOOST_CHECK_THROW(c.register_post_accumulate_grad_hook([](const Tensor&) {}), Error);
}

BOOST_AUTO_TEST_SUITE_END()
