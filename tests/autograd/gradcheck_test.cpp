// gradcheck itself: it passes correct backwards, catches wrong ones, and reports where.
#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;

namespace {

// x² with a deliberately wrong backward (3x instead of 2x) at element `bad`, built on the
// public Node API as a user's op would be: the input in the node's store (save / saved), the
// vjp written with xgrad ops (so it is differentiable too: g·x·w with a constant weight w that
// is 2 everywhere but 3 at `bad`).
struct BadSquareBackward final : autograd::Node {
  autograd::Saved x;
  std::int64_t bad = 0;
  std::string_view name() const override { return "bad_square"; }
  autograd::tensor_list apply(autograd::tensor_list&& g) override {
    Tensor xv = saved(x);
    Tensor w = full_like(xv, 2.0);
    w.data_ptr<double>()[bad] = 3.0;
    return {g[0] * xv * w};
  }
};

Tensor bad_square(const Tensor& x, std::int64_t bad) {
  Tensor out;
  {
    no_grad guard;
    out = x * x;
  }
  autograd::record_op<BadSquareBackward>({&x}, {&out}, [&](BadSquareBackward& n) {
    n.x = n.save(x);
    n.bad = bad;
  });
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gradcheck_suite)

BOOST_AUTO_TEST_CASE(passes_a_correct_backward) {
  Tensor x = tensor({0.5, -1.5, 2.0}, float64).requires_grad_();
  GradcheckResult r =
      gradcheck([](const std::vector<Tensor>& in) { return in[0] * in[0]; }, {x}, 1e-6, 1e-7, 1e-5);
  BOOST_TEST(r.ok, r.message);
  BOOST_TEST(r.max_abs_error < 1e-8);
}

BOOST_AUTO_TEST_CASE(catches_a_wrong_backward_and_names_the_element) {
  Tensor x = tensor({0.5, -1.5, 2.0}, float64).requires_grad_();
  GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return bad_square(in[0], 2); },
                                {x}, 1e-6, 1e-7, 1e-5);
  BOOST_TEST(!r.ok);
  BOOST_TEST(r.input == 0u);
  BOOST_TEST(r.element == 2);
  BOOST_TEST(r.output == 2);
  BOOST_TEST(std::abs(r.analytic - 6.0) < 1e-12);
  BOOST_TEST(std::abs(r.numeric - 4.0) < 1e-6);
  BOOST_TEST(r.message.find("FAILED") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(outputs_that_are_views_of_inputs) {
  // f returns a view of its input: finite differences must not see later perturbations.
  Tensor x = tensor({1.0, 2.0, 3.0, 4.0}, float64).requires_grad_();
  GradcheckResult r = gradcheck(
      [](const std::vector<Tensor>& in) {
        return reshape(in[0], {2, 2});
      },
      {x}, 1e-6, 1e-7, 1e-5);
  BOOST_TEST(r.ok, r.message);
}

BOOST_AUTO_TEST_CASE(several_inputs_and_one_without_grad) {
  Tensor a = tensor({{1.0, 2.0}, {3.0, 4.0}}, float64).requires_grad_();
  Tensor b = tensor({0.5, -0.5}, float64).requires_grad_();
  Tensor c = tensor({2.0, 3.0}, float64);  // constant
  GradcheckResult r =
      gradcheck([](const std::vector<Tensor>& in) { return tanh(matmul(in[0], in[1]) * in[2]); },
                {a, b, c}, 1e-6, 1e-7, 1e-5);
  BOOST_TEST(r.ok, r.message);
}

BOOST_AUTO_TEST_CASE(rejects_float32_inputs) {
  Tensor x = tensor({1.0}, float32).requires_grad_();
  expect_error([&] { gradcheck([](const std::vector<Tensor>& in) { return in[0]; }, {x}); },
               {"gradcheck", "float64"});
}

BOOST_AUTO_TEST_SUITE_END()
