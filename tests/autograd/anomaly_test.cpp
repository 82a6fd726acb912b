// Anomaly detection: under detect_anomaly, backward checks every gradient a node produces and
// throws naming the op and the line of this file that called it (checked against __LINE__);
// errors thrown by a backward get the call site too; the mode is per thread, nests, and costs
// nothing when off.
#include <cmath>
#include <string>
#include <thread>

#include "test_util.hpp"
#include "xgrad/autograd/anomaly.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A user-defined op whose backward is broken: it returns two gradients for one input.
struct Broken : autograd::Function<Broken> {
  static constexpr std::string_view name = "broken";
  static Tensor forward(autograd::FunctionCtx&, const Tensor& x) { return x * 1.0; }
  static autograd::tensor_list backward(autograd::FunctionCtx&, const autograd::tensor_list& g) {
    return {g[0], g[0]};
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(anomaly)

BOOST_AUTO_TEST_CASE(log_of_zero_names_log_and_the_line_that_called_it) {
  Tensor x = tensor({1.0, 2.0, 3.0}, float64).requires_grad_();
  autograd::detect_anomaly guard;
  const int line = __LINE__ + 1;  // the next line
  Tensor y = log(x - x).sum();
  // log(0) = -inf forward; backward: 1/0 = Inf, the first non-finite gradient, made by log.
  expect_error([&] { y.backward(); },
               {"log: backward produced Inf in the gradient of input 0 ([3] float64: 0 NaN and 3 "
                "Inf of 3 entries)",
                "'log' was called at ", "anomaly_test.cpp:" + std::to_string(line) + " ",
                "log_of_zero_names_log_and_the_line_that_called_it", "(detect_anomaly)"});
}

BOOST_AUTO_TEST_CASE(call_site_of_a_node) {
  autograd::detect_anomaly guard;
  Tensor x = tensor({4.0}, float64).requires_grad_();
  const int line = __LINE__ + 1;  // the next line
  Tensor y = x.sqrt();
  auto site = autograd::call_site(*y.grad_fn());
  BOOST_REQUIRE(site.has_value());
  BOOST_TEST(ends_with(site->file, "tests/autograd/anomaly_test.cpp"));
  BOOST_TEST(site->line == line);
  BOOST_TEST(site->function.find("call_site_of_a_node") != std::string::npos);
  // The whole stack is there too, innermost first: xgrad's own frames, then this test.
  const auto stack = autograd::recorded_stack(*y.grad_fn());
  BOOST_TEST(stack.size() > 3u);
  bool saw_node_ctor = false;
  for (const auto& f : stack)
    saw_node_ctor = saw_node_ctor || ends_with(f.file, "src/autograd/node.cpp");
  BOOST_TEST(saw_node_ctor);
}

BOOST_AUTO_TEST_CASE(nan_is_caught_where_it_is_made) {
  autograd::detect_anomaly guard;
  Tensor x = tensor({1.0, 4.0}, float64).requires_grad_();
  const int line = __LINE__ + 1;  // the next line
  Tensor y = (x - 2.0).sqrt();
  Tensor loss = y.sum();
  expect_error([&] { loss.backward(); },
               {"sqrt: backward produced NaN", "anomaly_test.cpp:" + std::to_string(line)});
  BOOST_TEST(!x.grad().defined());  // stopped before anything reached x
}

BOOST_AUTO_TEST_CASE(errors_inside_a_backward_get_the_call_site) {
  autograd::detect_anomaly guard;
  Tensor x = tensor({1.0}, float64).requires_grad_();
  const int line = __LINE__ + 1;  // the next line
  Tensor y = Broken::apply(x);
  expect_error([&] { y.sum().backward(); },
               {"broken: backward returned 2 gradients", "'broken' was called at",
                "anomaly_test.cpp:" + std::to_string(line)});
}

BOOST_AUTO_TEST_CASE(off_by_default_and_free_when_off) {
  BOOST_TEST(!autograd::is_anomaly_enabled());
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor y = log(x - x).sum();
  BOOST_TEST(y.grad_fn()->debug_info() == nullptr);  // no stack captured
  BOOST_TEST(!autograd::call_site(*y.grad_fn()).has_value());
  y.backward();  // no check: the NaN simply arrives
  BOOST_TEST(std::isnan(to_xarray<double>(x.grad())(0)));
}

BOOST_AUTO_TEST_CASE(graph_recorded_before_the_mode_says_so) {
  Tensor x = tensor({1.0}, float64).requires_grad_();
  Tensor y = log(x - x).sum();
  autograd::detect_anomaly guard;  // on for backward only
  expect_error([&] { y.backward(); },
               {"log: backward produced Inf", "recorded while anomaly detection was off"});
}

BOOST_AUTO_TEST_CASE(mode_nests_is_restored_and_is_per_thread) {
  {
    autograd::detect_anomaly on;
    BOOST_TEST(autograd::is_anomaly_enabled());
    {
      autograd::detect_anomaly off(false);
      BOOST_TEST(!autograd::is_anomaly_enabled());
      Tensor x = tensor({1.0}, float64).requires_grad_();
      BOOST_TEST((x * 2.0).grad_fn()->debug_info() == nullptr);
    }
    BOOST_TEST(autograd::is_anomaly_enabled());
    bool other = true;
    std::thread t([&] { other = autograd::is_anomaly_enabled(); });
    t.join();
    BOOST_TEST(!other);
  }
  BOOST_TEST(!autograd::is_anomaly_enabled());
  autograd::set_anomaly_enabled(true);
  BOOST_TEST(autograd::is_anomaly_enabled());
  autograd::set_anomaly_enabled(false);
  BOOST_TEST(autograd::detail::record_flags() == 0u);
}

BOOST_AUTO_TEST_CASE(finite_gradients_pass_unchanged) {
  Tensor x = tensor({1.0, 2.0, 3.0}, float64).requires_grad_();
  {
    autograd::detect_anomaly guard;
    (x * x).sum().backward();
  }
  testing::expect_values(x.grad(), {3}, {2.0, 4.0, 6.0});
}

BOOST_AUTO_TEST_SUITE_END()
