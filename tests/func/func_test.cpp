// xgrad::func, torch.func's transforms: exact values on elementwise functions (Rosenbrock's
// Hessian, derivatives of scalar functions), compositions, functional_call, and an MLP's loss
// against torch.func's goldens (tools/torch_func.py).
#include <boost/test/unit_test.hpp>

#include "golden_file.hpp"
#include "test_util.hpp"
#include "xgrad/func.hpp"
#include "xgrad/nn/activation.hpp"
#include "xgrad/nn/batchnorm.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/sequential.hpp"
#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/loss.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_golden;
using xgrad::testing::expect_values;
using xgrad::testing::GoldenCase;
using xgrad::testing::make;
using xgrad::testing::read_golden_file;
using xgrad::testing::values_of;
// The suite is named func too: the transforms are reached through this alias.
namespace xf = xgrad::func;

namespace {

// Rosenbrock's function of two 0-d tensors: (1 − x)² + 100 (y − x²)², elementwise ops only.
Tensor rosenbrock(const std::vector<Tensor>& in) {
  const Tensor& x = in[0];
  const Tensor& y = in[1];
  Tensor a = 1.0 - x;
  Tensor b = y - x * x;
  return a * a + 100.0 * (b * b);
}

Tensor scalar(double v) {
  return scalar_tensor(v, float64);
}

// Exact equality of every element (no tolerance).
void expect_exact(const Tensor& t, const Shape& shape, const std::vector<double>& values) {
  BOOST_REQUIRE(t.defined());
  BOOST_REQUIRE(t.shape() == shape);
  const auto got = values_of(t);
  BOOST_REQUIRE_EQUAL(got.size(), values.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    BOOST_CHECK_MESSAGE(got[i] == values[i],
                        "element " << i << ": got " << got[i] << ", expected " << values[i]);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(func)

// ---- exact values on elementwise functions ------------------------------------------------

// H = [[2 − 400(y − 3x²), −400x], [−400x, 200]]; at (−1.5, 2): [[1902, 600], [600, 200]]. All
// intermediate values are small multiples of powers of two, so float64 gets them exactly.
BOOST_AUTO_TEST_CASE(hessian_of_rosenbrock_is_exact) {
  const double x = -1.5, y = 2.0;
  const std::vector<Tensor> p = {scalar(x), scalar(y)};
  auto H = xf::hessian(rosenbrock, {0, 1})(p);
  BOOST_REQUIRE_EQUAL(H.size(), 2u);
  expect_exact(H[0][0], {}, {2 - 400 * (y - 3 * x * x)});
  expect_exact(H[0][1], {}, {-400 * x});
  expect_exact(H[1][0], {}, {-400 * x});
  expect_exact(H[1][1], {}, {200.0});
  // The inputs are untouched: no grad, no history.
  BOOST_TEST(!p[0].requires_grad());
  BOOST_TEST(!p[0].grad().defined());
  // jacrev(jacrev(f)) is the same matrix (reverse-over-reverse).
  auto H2 = xf::jacrev(xf::jacrev(rosenbrock, {0, 1}), {0, 1})(p);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) expect_exact(H2[i][j], {}, values_of(H[i][j]));
}

BOOST_AUTO_TEST_CASE(grad_and_value_of_rosenbrock) {
  const double x = -1.5, y = 2.0;
  auto [g, v] = xf::grad_and_value(rosenbrock, {0, 1})({scalar(x), scalar(y)});
  // ∇f = [−2(1 − x) − 400x(y − x²), 200(y − x²)]
  expect_exact(g[0], {}, {-2 * (1 - x) - 400 * x * (y - x * x)});
  expect_exact(g[1], {}, {200 * (y - x * x)});
  expect_exact(v, {}, {(1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x)});
  BOOST_TEST(!g[0].requires_grad());
  BOOST_TEST(!v.requires_grad());
  // argnums picks the inputs, negative counts from the end.
  auto gy = xf::grad(rosenbrock, {-1})({scalar(x), scalar(y)});
  BOOST_REQUIRE_EQUAL(gy.size(), 1u);
  expect_exact(gy[0], {}, {200 * (y - x * x)});
}

BOOST_AUTO_TEST_CASE(hvp_and_vhp_of_rosenbrock) {
  const double x = -1.5, y = 2.0;
  const std::vector<Tensor> p = {scalar(x), scalar(y)}, v = {scalar(1.0), scalar(-2.0)};
  // H·v = [1902 − 1200, 600 − 400]
  auto [out, hv] = xf::hvp(rosenbrock, p, v);
  expect_exact(out, {}, {6.25 + 100 * 0.0625});
  expect_exact(hv[0], {}, {702.0});
  expect_exact(hv[1], {}, {200.0});
  auto [out2, vh] = xf::vhp(rosenbrock, p, v);
  expect_exact(out2, {}, values_of(out));
  expect_exact(vh[0], {}, {702.0});
  expect_exact(vh[1], {}, {200.0});
}

// y = x² eˣ elementwise: J = diag((2x + x²) eˣ), by both modes, and jvp / vjp along vectors.
BOOST_AUTO_TEST_CASE(jacobians_of_an_elementwise_map) {
  auto f = [](const Tensor& x) { return x * x * exp(x); };
  Tensor x = make({0.5, -1.0, 2.0}, {3});
  std::vector<double> d, expected(9, 0.0);
  for (double v : values_of(x)) d.push_back((2 * v + v * v) * std::exp(v));
  for (int i = 0; i < 3; ++i) expected[4 * i] = d[i];
  expect_values(xf::jacrev(f)(x), {3, 3}, expected);
  expect_values(xf::jacfwd(f)(x), {3, 3}, expected);
  auto [y, t] = xf::jvp(f, x, make({1.0, 2.0, 3.0}, {3}));
  expect_values(y, {3}, values_of(f(x)));
  expect_values(t, {3}, {d[0], 2 * d[1], 3 * d[2]});
  auto [y2, vjp_fn] = xf::vjp(f, x);
  expect_values(y2, {3}, values_of(f(x)));
  expect_values(vjp_fn(make({1.0, 0.0, -1.0}, {3})), {3}, {d[0], 0.0, -d[2]});
  // vjp_fn may be called again.
  expect_values(vjp_fn(make({0.0, 1.0, 0.0}, {3})), {3}, {0.0, d[1], 0.0});
}

// Several inputs with broadcasting: f(a [2,1], b [3]) = a·b [2,3]; shapes are out ++ in.
BOOST_AUTO_TEST_CASE(jacobian_shapes_follow_torch) {
  xf::Fn f = [](const std::vector<Tensor>& in) { return in[0] * in[1]; };
  std::vector<Tensor> in = {make({2.0, 3.0}, {2, 1}), make({1.0, 4.0, 5.0}, {3})};
  for (auto jac : {xf::jacrev(f, {0, 1}), xf::jacfwd(f, {0, 1})}) {
    auto J = jac(in);
    BOOST_REQUIRE_EQUAL(J.size(), 2u);
    // ∂(a_i b_j)/∂a_k = δ_ik b_j, ∂(a_i b_j)/∂b_k = a_i δ_jk
    std::vector<double> ja(2 * 3 * 2 * 1, 0.0), jb(2 * 3 * 3, 0.0);
    const double a[] = {2.0, 3.0}, b[] = {1.0, 4.0, 5.0};
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) {
        ja[(i * 3 + j) * 2 + i] = b[j];
        jb[(i * 3 + j) * 3 + j] = a[i];
      }
    expect_values(J[0], {2, 3, 2, 1}, ja);
    expect_values(J[1], {2, 3, 3}, jb);
  }
}

// ---- composition ---------------------------------------------------------------------------

// f(x) = x³ eˣ: f' = (3x² + x³) eˣ, f'' = (6x + 6x² + x³) eˣ, f''' = (6 + 18x + 9x² + x³) eˣ.
BOOST_AUTO_TEST_CASE(grad_of_grad_is_the_second_derivative) {
  auto f = [](const Tensor& x) { return x * x * x * exp(x); };
  for (double x : {0.7, -1.3, 2.0}) {
    const double e = std::exp(x);
    expect_values(xf::grad(f)(scalar(x)), {}, {(3 * x * x + x * x * x) * e});
    expect_values(xf::grad(xf::grad(f))(scalar(x)), {}, {(6 * x + 6 * x * x + x * x * x) * e});
    expect_values(xf::grad(xf::grad(xf::grad(f)))(scalar(x)), {},
                  {(6 + 18 * x + 9 * x * x + x * x * x) * e});
  }
}

// A closure over the outer variable: d/dx [d/dy (x·y²) at y = 3] = d/dx 6x = 6. The inner grad
// records its backward because an outer transform is running.
BOOST_AUTO_TEST_CASE(grad_of_a_closure_over_the_outer_input) {
  auto outer = [](const Tensor& x) {
    auto inner = [x](const Tensor& y) { return x * y * y; };
    return xf::grad(xf::UnaryFn(inner))(scalar(3.0));
  };
  expect_values(xf::grad(xf::UnaryFn(outer))(scalar(2.0)), {}, {6.0});
}

// jacrev(jacrev(f)), jacfwd(jacrev(f)) and hessian(f) agree on a map with cross terms.
BOOST_AUTO_TEST_CASE(second_order_compositions_agree) {
  // f(x [2]) = eˣ·x₀ broadcast through a [2,1] view of x: f = Σ? keep it elementwise: f(x) =
  // (x ∘ x) · c with c broadcast, a 0-d output by a product of two 0-d inputs.
  xf::Fn f = [](const std::vector<Tensor>& in) {
    return exp(in[0] * in[1]) + in[0] * in[0] * in[1];
  };
  std::vector<Tensor> p = {scalar(0.3), scalar(-0.8)};
  auto H = xf::hessian(f, {0, 1})(p);
  auto H2 = xf::jacrev(xf::jacrev(f, {0, 1}), {0, 1})(p);
  auto H3 = xf::jacfwd(xf::jacrev(f, {0, 1}), {0, 1})(p);
  const double x = 0.3, y = -0.8, e = std::exp(x * y);
  const double hxx = y * y * e + 2 * y, hxy = e + x * y * e + 2 * x, hyy = x * x * e;
  const double expected[2][2] = {{hxx, hxy}, {hxy, hyy}};
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      expect_values(H[i][j], {}, {expected[i][j]});
      expect_values(H2[i][j], {}, {expected[i][j]});
      expect_values(H3[i][j], {}, {expected[i][j]});
    }
}

// Reverse-over-forward works too: the tangents of jacfwd's passes are recorded when its inputs
// require grad (an outer jacrev's leaves).
BOOST_AUTO_TEST_CASE(jacrev_of_jacfwd_is_the_hessian) {
  const std::vector<Tensor> p = {scalar(-1.5), scalar(2.0)};
  auto H = xf::jacrev(xf::jacfwd(rosenbrock, {0, 1}), {0, 1})(p);
  expect_exact(H[0][0], {}, {1902.0});
  expect_exact(H[0][1], {}, {600.0});
  expect_exact(H[1][0], {}, {600.0});
  expect_exact(H[1][1], {}, {200.0});
}

// A gradient from func::grad of inputs that require grad is differentiable by plain backward
// (a gradient penalty): f = w²·x, ∂f/∂x = w², d(∂f/∂x)/dw = 2w.
BOOST_AUTO_TEST_CASE(grad_of_inputs_that_require_grad_has_a_graph) {
  Tensor w = scalar(3.0).requires_grad_();
  xf::Fn f = [](const std::vector<Tensor>& in) { return in[1] * in[1] * in[0]; };
  Tensor gx = xf::grad(f, {0})({scalar(2.0), w})[0];
  expect_values(gx, {}, {9.0});
  BOOST_REQUIRE(gx.requires_grad());
  gx.backward();
  expect_values(w.grad(), {}, {6.0});
}

BOOST_AUTO_TEST_CASE(jacfwd_of_jacfwd_is_refused_clearly) {
  auto f = [](const Tensor& x) { return x * x; };
  expect_error([&] { xf::jacfwd(xf::jacfwd(xf::UnaryFn(f)))(make({1.0}, {1})); },
               {"jacfwd", "one dual level", "jacfwd(jacrev(f))"});
}

BOOST_AUTO_TEST_CASE(transform_errors) {
  auto f = [](const Tensor& x) { return x * x; };
  expect_error(
      [&] {
        xf::grad(xf::UnaryFn(f))(make({1.0, 2.0}, {2}));
      },
      {"grad", "one-element", "[2]"});
  expect_error(
      [&] {
        xf::grad(rosenbrock, {2})({scalar(1.0), scalar(2.0)});
      },
      {"grad", "argnum 2", "out of range"});
  expect_error(
      [&] {
        xf::grad(rosenbrock, {0, -2})({scalar(1.0), scalar(2.0)});
      },
      {"grad", "twice"});
  expect_error(
      [&] {
        xf::jvp(xf::UnaryFn(f), make({1.0, 2.0}, {2}), make({1.0}, {1}));
      },
      {"jvp", "[1]", "[2]"});
  auto [y, vjp_fn] = xf::vjp(xf::UnaryFn(f), make({1.0, 2.0}, {2}));
  expect_error([&] { vjp_fn(make({1.0}, {1})); }, {"vjp", "cotangent", "[1]", "[2]"});
}

// An input the function does not use gets a zero gradient (torch.func), not an error.
BOOST_AUTO_TEST_CASE(unused_inputs_get_zeros) {
  xf::Fn f = [](const std::vector<Tensor>& in) { return in[0] * in[0]; };
  auto g = xf::grad(f, {0, 1})({scalar(3.0), make({1.0, 2.0}, {2})});
  expect_values(g[0], {}, {6.0});
  expect_values(g[1], {2}, {0.0, 0.0});
  auto J = xf::jacfwd(f, {1})({scalar(3.0), make({1.0, 2.0}, {2})});
  expect_values(J[0], {2}, {0.0, 0.0});
}

// ---- functional_call -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(functional_call_substitutes_and_restores) {
  nn::Linear fc(2, 1, {.dtype = float64});
  Tensor w0 = fc.weight, b0 = fc.bias;
  Tensor w = make({2.0, -1.0}, {1, 2}).requires_grad_(), b = make({0.5}, {1});
  Tensor x = make({3.0, 4.0}, {1, 2});
  Tensor y = xf::functional_call(fc, {{"weight", w}, {"bias", b}}, x);
  expect_values(y, {1, 1}, {2.5});
  // The module has its own tensors back, as fields and in its tables.
  BOOST_TEST(fc.weight.impl() == w0.impl());
  BOOST_TEST(fc.bias.impl() == b0.impl());
  BOOST_TEST(fc.named_parameters()[0].second.impl() == w0.impl());
  // The gradient reaches the substitute (after the call: the graph kept w, not fc.weight).
  Tensor gw = grad({y.sum()}, {w})[0];
  expect_values(gw, {1, 2}, {3.0, 4.0});
  // Names left out keep the module's own tensor.
  Tensor y2 = xf::functional_call(fc, {{"bias", b}}, x);
  expect_values(y2, {1, 1}, {values_of(w0)[0] * 3 + values_of(w0)[1] * 4 + 0.5});
}

BOOST_AUTO_TEST_CASE(functional_call_restores_on_errors) {
  nn::Linear fc(2, 1, {.dtype = float64});
  Tensor w0 = fc.weight;
  expect_error(
      [&] {
        xf::functional_call(fc, {{"weight", make({1.0, 2.0, 3.0}, {1, 3})}},
                            make({1.0, 2.0}, {1, 2}));
      },
      {"linear"});
  BOOST_TEST(fc.weight.impl() == w0.impl());
  expect_error(
      [&] {
        xf::functional_call(fc, {{"wieght", w0}}, make({1.0, 2.0}, {1, 2}));
      },
      {"no parameter or buffer named 'wieght'"});
  BOOST_TEST(fc.weight.impl() == w0.impl());
}

// ---- softmax: J = diag(s) − s sᵀ ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(jacobians_of_softmax) {
  Tensor x = make({0.3, -1.2, 2.0, 0.5}, {4});
  auto f = [](const Tensor& t) { return softmax(t, 0); };
  const auto s = values_of(f(x));
  std::vector<double> expected;
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 4; ++j) expected.push_back((i == j ? s[i] : 0.0) - s[i] * s[j]);
  expect_values(xf::jacrev(xf::UnaryFn(f))(x), {4, 4}, expected, 1e-12);
  expect_values(xf::jacfwd(xf::UnaryFn(f))(x), {4, 4}, expected, 1e-12);
}

// ---- an MLP's loss against torch.func (tests/data/func_golden/mlp.txt) ---------------------

namespace {

// The golden's model: Sequential(Linear(4, 5), ReLU, Linear(5, 3)), float64; its parameters
// are passed through functional_call in state_dict order.
struct GoldenMLP {
  GoldenCase g = read_golden_file("func_golden", "mlp.txt").at(0);
  std::vector<std::string> names = {"0.weight", "0.bias", "2.weight", "2.bias"};
  std::shared_ptr<nn::Sequential> model =
      std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
          std::make_shared<nn::Linear>(4, 5, nn::LinearOptions{.dtype = float64}),
          std::make_shared<nn::ReLU>(),
          std::make_shared<nn::Linear>(5, 3, nn::LinearOptions{.dtype = float64})});

  std::vector<Tensor> tensors(const std::string& prefix) const {
    std::vector<Tensor> out;
    for (const auto& n : names) out.push_back(g.at(prefix + n));
    return out;
  }
  xf::Fn logits() const {
    return [this](const std::vector<Tensor>& p) {
      std::map<std::string, Tensor> state;
      for (std::size_t i = 0; i < names.size(); ++i) state[names[i]] = p[i];
      return xf::functional_call(*model, state, g.at("x"));
    };
  }
  xf::Fn loss() const {
    return
        [this](const std::vector<Tensor>& p) { return cross_entropy(logits()(p), g.int64("y")); };
  }
};

constexpr double kGoldenTol = 1e-10;
const std::vector<std::int64_t> kAll = {0, 1, 2, 3};

}  // namespace

BOOST_AUTO_TEST_CASE(mlp_jacobians_match_torch_func) {
  GoldenMLP m;
  const auto p = m.tensors("p.");
  expect_golden(m.loss()(p), m.g.at("loss"), kGoldenTol);
  const auto jr = xf::jacrev(m.loss(), kAll)(p);
  const auto jf = xf::jacfwd(m.loss(), kAll)(p);
  const auto lr = xf::jacrev(m.logits(), kAll)(p);
  const auto lf = xf::jacfwd(m.logits(), kAll)(p);
  for (std::size_t i = 0; i < 4; ++i) {
    expect_golden(jr[i], m.g.at("jacrev_loss." + m.names[i]), kGoldenTol);
    expect_golden(jf[i], m.g.at("jacfwd_loss." + m.names[i]), kGoldenTol);
    expect_golden(lr[i], m.g.at("jacrev_logits." + m.names[i]), kGoldenTol);
    expect_golden(lf[i], m.g.at("jacfwd_logits." + m.names[i]), kGoldenTol);
  }
  // The module has its own parameters back.
  BOOST_TEST(m.model->parameters()[0].requires_grad());
  BOOST_TEST(m.model->parameters()[0].shape() == (Shape{5, 4}));
}

BOOST_AUTO_TEST_CASE(mlp_hessian_matches_torch_func) {
  GoldenMLP m;
  const auto H = xf::hessian(m.loss(), kAll)(m.tensors("p."));
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 4; ++j)
      expect_golden(H[i][j], m.g.at("hessian." + m.names[i] + "." + m.names[j]), kGoldenTol);
}

BOOST_AUTO_TEST_CASE(mlp_products_match_torch_func) {
  GoldenMLP m;
  const auto p = m.tensors("p."), v = m.tensors("v.");
  auto [out, hv] = xf::hvp(m.loss(), p, v);
  auto [out2, vh] = xf::vhp(m.loss(), p, v);
  expect_golden(out, m.g.at("loss"), kGoldenTol);
  expect_golden(out2, m.g.at("loss"), kGoldenTol);
  for (std::size_t i = 0; i < 4; ++i) {
    expect_golden(hv[i], m.g.at("hvp." + m.names[i]), kGoldenTol);
    expect_golden(vh[i], m.g.at("vhp." + m.names[i]), kGoldenTol);
  }
  expect_golden(xf::jvp(m.loss(), p, v).second, m.g.at("jvp_loss"), kGoldenTol);
  expect_golden(xf::jvp(m.logits(), p, v).second, m.g.at("jvp_logits"), kGoldenTol);
  auto [logits, vjp_fn] = xf::vjp(m.logits(), p);
  const auto g = vjp_fn(m.g.at("ct"));
  for (std::size_t i = 0; i < 4; ++i)
    expect_golden(g[i], m.g.at("vjp_logits." + m.names[i]), kGoldenTol);
}

// Buffers are substituted too: batch norm in training mode updates the substitute's running
// mean in place, not the module's.
BOOST_AUTO_TEST_CASE(functional_call_substitutes_buffers) {
  nn::BatchNorm1d bn(2, {.dtype = float64});
  Tensor mean = zeros({2}, float64);
  Tensor x = make({1.0, 10.0, 3.0, 20.0}, {2, 2});
  xf::functional_call(bn, {{"running_mean", mean}}, x);
  expect_values(mean, {2}, {0.2, 1.5});  // momentum 0.1 × batch mean [2, 15]
  expect_values(bn.running_mean, {2}, {0.0, 0.0});
}

// A parameter whose field was assigned from register_parameter's result cannot be swapped: the
// error names it instead of running forward with the module's own tensor.
struct Scale : nn::Module {
  Scale() { w = register_parameter("w", ones({2}, float64)); }
  Tensor w;
  Tensor forward(const Tensor& x) override { return x * w; }
};

BOOST_AUTO_TEST_CASE(functional_call_refuses_an_unbound_parameter) {
  Scale m;
  expect_error(
      [&] {
        xf::functional_call(m, {{"w", zeros({2}, float64)}}, ones({2}, float64));
      },
      {"'w'", "register_parameter(name, member, tensor)"});
}

BOOST_AUTO_TEST_SUITE_END()
