// User-defined ops through autograd::Function: the swish example of docs/extending.md.
#include "../../examples/swish.hpp"
#include "test_util.hpp"
#include "xgrad/viz/dot.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;

namespace {

// A two-input op with a non-tensor argument: scaled_mul(a, b, k) = k·a·b.
struct ScaledMul : autograd::Function<ScaledMul> {
  static constexpr std::string_view name = "scaled_mul";
  static Tensor forward(autograd::FunctionCtx& ctx, const Tensor& a, const Tensor& b, double k) {
    ctx.save_for_backward({a, b});
    ctx.saved_data["k"] = k;
    return a * b * k;
  }
  static autograd::tensor_list backward(autograd::FunctionCtx& ctx,
                                        const autograd::tensor_list& g) {
    auto s = ctx.saved_tensors();
    const double k = ctx.saved_data.at("k");
    Tensor ga = ctx.needs_input_grad(0) ? g[0] * s[1] * k : Tensor();
    Tensor gb = ctx.needs_input_grad(1) ? g[0] * s[0] * k : Tensor();
    return {ga, gb};
  }
  // d(k·a·b) = k·(da·b + a·db)
  static Tensor jvp(autograd::FunctionCtx& ctx, const autograd::tensor_list& t) {
    auto s = ctx.saved_tensors();
    return (t[0] * s[1] + s[0] * t[1]) * ctx.saved_data.at("k");
  }
};

// An identity op: forward returns its input unchanged.
struct Identity : autograd::Function<Identity> {
  static constexpr std::string_view name = "identity";
  static Tensor forward(autograd::FunctionCtx&, const Tensor& x) { return x; }
  static autograd::tensor_list backward(autograd::FunctionCtx&, const autograd::tensor_list& g) {
    return {g[0]};
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(function)

BOOST_AUTO_TEST_CASE(swish_values_and_gradient) {
  Tensor x = tensor({-1.0, 0.0, 2.0}, float64).requires_grad_();
  Tensor y = swish(x, 1.0);
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  expect_values(y, {3}, {-sig(-1.0), 0.0, 2.0 * sig(2.0)}, 1e-15);
  y.sum().backward();
  auto d = [&](double v) { return sig(v) + v * sig(v) * (1 - sig(v)); };
  expect_values(x.grad(), {3}, {d(-1.0), d(0.0), d(2.0)}, 1e-15);
  BOOST_TEST(y.grad_fn()->name() == "swish");
}

BOOST_AUTO_TEST_CASE(swish_passes_gradcheck) {
  manual_seed(3);
  Tensor x = randn({2, 3}, float64).requires_grad_();
  xgrad::testing::expect_gradcheck([](const std::vector<Tensor>& in) { return swish(in[0], 0.7); },
                                   {x});
}

BOOST_AUTO_TEST_CASE(float32_works_too) {
  Tensor x = tensor({0.5, -0.5}, float32).requires_grad_();
  Tensor y = swish(x, 2.0);
  BOOST_TEST(y.dtype() == Dtype::float32);
  y.sum().backward();
  BOOST_TEST(x.grad().dtype() == Dtype::float32);
}

BOOST_AUTO_TEST_CASE(two_inputs_and_a_constant) {
  Tensor a = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor b = tensor({3.0, -4.0}, float64);  // no grad needed
  Tensor y = ScaledMul::apply(a, b, 0.5);
  expect_values(y, {2}, {1.5, -4.0});
  y.sum().backward();
  expect_values(a.grad(), {2}, {1.5, -2.0});
  Tensor b2 = tensor({3.0, -4.0}, float64).requires_grad_();
  xgrad::testing::expect_gradcheck(
      [](const std::vector<Tensor>& in) { return ScaledMul::apply(in[0], in[1], 0.5); }, {a, b2});
}

BOOST_AUTO_TEST_CASE(no_graph_when_nothing_requires_grad) {
  Tensor x = tensor({1.0}, float64);
  Tensor y = swish(x);
  BOOST_TEST(!y.requires_grad());
  BOOST_TEST(y.grad_fn() == nullptr);
  no_grad guard;
  Tensor z = swish(tensor({1.0}, float64).requires_grad_());
  BOOST_TEST(z.grad_fn() == nullptr);
}

BOOST_AUTO_TEST_CASE(saved_tensor_modified_in_place_is_refused) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor b = tensor({3.0, 4.0}, float64);
  Tensor y = ScaledMul::apply(x, b, 1.0);
  b.mul_(2.0);
  expect_error([&] { y.sum().backward(); }, {"scaled_mul", "in-place"});
}

BOOST_AUTO_TEST_CASE(second_backward_needs_retain_graph) {
  Tensor x = tensor({1.0}, float64).requires_grad_();
  Tensor y = swish(x).sum();
  y.backward();
  expect_error([&] { y.backward(); }, {"swish", "second time"});
}

BOOST_AUTO_TEST_CASE(identity_op_does_not_rewrite_its_input) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor y = Identity::apply(x);
  BOOST_TEST(x.is_leaf());
  BOOST_TEST(!y.is_leaf());
  (y * 3.0).sum().backward();
  expect_values(x.grad(), {2}, {3.0, 3.0});
}

BOOST_AUTO_TEST_CASE(appears_in_dot_graphs_with_its_name) {
  Tensor x = tensor({1.0, 2.0}, float64).requires_grad_();
  x.set_name("x");
  Tensor y = swish(x).sum();
  const std::string dot = viz::to_dot({y});
  BOOST_TEST(dot.find("swish") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
