// nn::Module and friends: parameter naming (MLP, Sequential, nesting), train/eval, zero_grad,
// Linear's forward and initialisation, the nn::init functions, and registration errors.
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "test_util.hpp"
#include "xgrad/nn/activation.hpp"
#include "xgrad/nn/init.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/nn/module.hpp"
#include "xgrad/nn/sequential.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;

namespace {

std::vector<std::string> names_of(const nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& [name, p] : m.named_parameters()) out.push_back(name);
  return out;
}

struct Stats {
  double mean, std, min, max;
};

Stats stats(const Tensor& t) {
  xt::xarray<double> v = to_xarray<double>(t);
  const double n = static_cast<double>(v.size());
  double s = 0;
  for (double x : v) s += x;
  const double m = s / n;
  double var = 0;
  for (double x : v) var += (x - m) * (x - m);
  return {m, std::sqrt(var / n), xt::amin(v)(), xt::amax(v)()};
}

nn::LinearOptions options(Dtype dtype, bool bias = true) {
  nn::LinearOptions o;
  o.dtype = dtype;
  o.bias = bias;
  return o;
}

void set_values(Tensor& t, const Tensor& values) {
  no_grad guard;
  t.copy_(values);
}

// A module with its own parameters and children, to test naming and registration errors.
class Block : public nn::Module {
 public:
  Block() {
    scale = register_parameter("scale", ones({2}));
    inner = register_module("inner", std::make_shared<nn::Linear>(2, 2));
    shift = register_parameter("shift", zeros({2}));
  }
  void add_parameter(const std::string& name, Tensor t) { register_parameter(name, std::move(t)); }
  void add_module(const std::string& name, std::shared_ptr<nn::Module> m) {
    register_module(name, std::move(m));
  }
  Tensor scale, shift;
  std::shared_ptr<nn::Linear> inner;

 protected:
  Tensor forward(const Tensor& x) override { return (*inner)(x)*scale + shift; }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(module)

// ---- names --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(mlp_parameter_names_and_shapes) {
  manual_seed(0);
  nn::MLP mlp({784, 256, 128, 10});
  const auto named = mlp.named_parameters();
  const std::vector<std::pair<std::string, Shape>> expected{
      {"fc1.weight", {256, 784}}, {"fc1.bias", {256}},       {"fc2.weight", {128, 256}},
      {"fc2.bias", {128}},        {"fc3.weight", {10, 128}}, {"fc3.bias", {10}}};
  BOOST_REQUIRE_EQUAL(named.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    BOOST_TEST(named[i].first == expected[i].first);
    BOOST_TEST(named[i].second.shape() == expected[i].second, "parameter " << named[i].first);
    // The tensor carries the same qualified name (graph dumps show it).
    BOOST_TEST(named[i].second.name() == expected[i].first);
    BOOST_TEST(named[i].second.requires_grad());
    BOOST_TEST(named[i].second.is_leaf());
    BOOST_TEST(named[i].second.dtype() == float32);
  }
  const auto params = mlp.parameters();
  BOOST_REQUIRE_EQUAL(params.size(), 6u);
  for (std::size_t i = 0; i < params.size(); ++i)
    BOOST_TEST(params[i].impl() == named[i].second.impl());
  BOOST_REQUIRE_EQUAL(mlp.layers().size(), 3u);
  BOOST_TEST(mlp.layers()[1]->weight.impl() == named[2].second.impl());
  BOOST_REQUIRE_EQUAL(mlp.children().size(), 3u);
  BOOST_TEST(mlp.children()[2].first == "fc3");
  BOOST_TEST(mlp.type_name() == "MLP");

  Tensor y = mlp(randn({5, 784}));
  BOOST_TEST((y.shape() == Shape{5, 10}));
  expect_error([] { nn::MLP(std::vector<std::int64_t>{784}); }, {"MLP", "at least"});
}

BOOST_AUTO_TEST_CASE(mlp_forward_is_linear_relu_stack) {
  manual_seed(3);
  nn::MLP mlp({4, 3, 2}, options(float64));
  Tensor x = randn({5, 4}, float64);
  const auto& l = mlp.layers();
  Tensor expected = linear(relu(linear(x, l[0]->weight, l[0]->bias)), l[1]->weight, l[1]->bias);
  Tensor y = mlp(x);
  BOOST_TEST((y.shape() == Shape{5, 2}));
  xt::xarray<double> a = to_xarray<double>(y), b = to_xarray<double>(expected);
  BOOST_TEST((a == b));
}

BOOST_AUTO_TEST_CASE(sequential_names_children_by_index) {
  auto l0 = std::make_shared<nn::Linear>(4, 3);
  auto l2 = std::make_shared<nn::Linear>(3, 2);
  nn::Sequential seq{l0, std::make_shared<nn::ReLU>(), l2};
  BOOST_TEST(seq.size() == 3u);
  BOOST_TEST(seq.children()[0].first == "0");
  BOOST_TEST(seq.children()[1].first == "1");
  BOOST_TEST(seq.children()[2].first == "2");
  BOOST_TEST(seq.children()[1].second->type_name() == "ReLU");
  BOOST_TEST(
      (names_of(seq) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  BOOST_TEST(l0->weight.name() == "0.weight");
  BOOST_TEST(l2->bias.name() == "2.bias");

  // push_back continues the numbering.
  seq.push_back(std::make_shared<nn::Tanh>()).push_back(std::make_shared<nn::Linear>(2, 1));
  BOOST_TEST(seq.size() == 5u);
  BOOST_TEST(names_of(seq).back() == "4.bias");

  Tensor x = randn({6, 4});
  Tensor y = seq(x);
  Tensor last_w = seq.named_parameters()[4].second, last_b = seq.named_parameters()[5].second;
  Tensor expected = linear(
      tanh(linear(relu(linear(x, l0->weight, l0->bias)), l2->weight, l2->bias)), last_w, last_b);
  BOOST_TEST((y.shape() == Shape{6, 1}));
  BOOST_TEST((to_xarray<float>(y) == to_xarray<float>(expected)));
}

BOOST_AUTO_TEST_CASE(nested_modules_prefix_names) {
  auto mlp = std::make_shared<nn::MLP>(std::vector<std::int64_t>{4, 3, 2});
  auto inner = std::make_shared<nn::Sequential>();
  inner->push_back(std::make_shared<nn::Linear>(2, 2));
  nn::Sequential outer{mlp, inner};
  const std::vector<std::string> expected{"0.fc1.weight", "0.fc1.bias", "0.fc2.weight",
                                          "0.fc2.bias",   "1.0.weight", "1.0.bias"};
  BOOST_TEST(names_of(outer) == expected);
  const auto named = outer.named_parameters();
  for (const auto& [name, p] : named) BOOST_TEST(p.name() == name);
  BOOST_TEST(mlp->layers()[0]->weight.name() == "0.fc1.weight");
  // The inner modules still name their own parameters relative to themselves.
  BOOST_TEST((names_of(*mlp) ==
              std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));

  // A module's own parameters come before its children's, in registration order per module.
  Block block;
  BOOST_TEST((names_of(block) ==
              std::vector<std::string>{"scale", "shift", "inner.weight", "inner.bias"}));
}

BOOST_AUTO_TEST_CASE(modules_added_after_registration_get_full_names) {
  // As in torch's C++ API: register an empty container, then fill it.
  nn::Sequential outer;
  outer.push_back(std::make_shared<nn::Linear>(2, 2));
  auto body = std::make_shared<nn::Sequential>();
  outer.push_back(body);
  auto late = std::make_shared<nn::Linear>(2, 3);
  body->push_back(late);
  BOOST_TEST((names_of(outer) ==
              std::vector<std::string>{"0.weight", "0.bias", "1.0.weight", "1.0.bias"}));
  BOOST_TEST(late->weight.name() == "1.0.weight");
  BOOST_TEST(late->bias.name() == "1.0.bias");
  // Registering the whole tree under another parent prefixes everything once more.
  nn::Sequential root;
  root.push_back(std::make_shared<nn::ReLU>());
  auto outer_ptr = std::make_shared<nn::Sequential>();
  outer_ptr->push_back(std::make_shared<nn::Sequential>());
  root.push_back(outer_ptr);
  auto deep = std::make_shared<nn::Linear>(1, 1);
  std::dynamic_pointer_cast<nn::Sequential>(outer_ptr->children()[0].second)->push_back(deep);
  BOOST_TEST(deep->weight.name() == "1.0.0.weight");
  BOOST_TEST(names_of(root).front() == "1.0.0.weight");
}

// ---- train / eval / zero_grad -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(train_and_eval_propagate) {
  auto mlp = std::make_shared<nn::MLP>(std::vector<std::int64_t>{3, 2, 1});
  nn::Sequential seq{mlp, std::make_shared<nn::ReLU>()};
  BOOST_TEST(seq.is_training());
  BOOST_TEST(mlp->layers()[0]->is_training());
  seq.eval();
  BOOST_TEST(!seq.is_training());
  BOOST_TEST(!mlp->is_training());
  for (const auto& l : mlp->layers()) BOOST_TEST(!l->is_training());
  BOOST_TEST(!seq.children()[1].second->is_training());
  seq.train();
  BOOST_TEST(seq.is_training());
  for (const auto& l : mlp->layers()) BOOST_TEST(l->is_training());
  mlp->train(false);  // a subtree only
  BOOST_TEST(seq.is_training());
  BOOST_TEST(!mlp->layers()[1]->is_training());
}

BOOST_AUTO_TEST_CASE(zero_grad_drops_or_zeroes) {
  manual_seed(1);
  nn::MLP mlp({3, 4, 2}, options(float64));
  Tensor x = randn({5, 3}, float64);
  mlp(x).sum().backward();
  for (const auto& p : mlp.parameters()) BOOST_REQUIRE(p.grad().defined());
  // The bias of the last layer gets the batch size as gradient of a plain sum.
  expect_values(mlp.layers()[1]->bias.grad(), {2}, {5.0, 5.0});

  mlp.zero_grad(/*set_to_none=*/false);
  for (const auto& p : mlp.parameters()) {
    BOOST_REQUIRE(p.grad().defined());
    BOOST_TEST(xt::amax(xt::abs(to_xarray<double>(p.grad())))() == 0.0);
  }
  mlp.zero_grad();
  for (const auto& p : mlp.parameters()) BOOST_TEST(!p.grad().defined());
}

// ---- Linear -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(linear_forward_hand_values) {
  nn::Linear lin(3, 2, options(float64));
  set_values(lin.weight, tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, float64));
  set_values(lin.bias, tensor({0.5, -1.0}, float64));
  Tensor x = tensor({{1.0, 0.0, -1.0}, {2.0, 1.0, 0.5}}, float64);
  // x·Wᵀ = [[-2, -2], [5.5, 16]], plus b.
  expect_values(lin(x), {2, 2}, {-1.5, -3.0, 6.0, 15.0});
  expect_values(lin(tensor({1.0, 0.0, -1.0}, float64)), {2}, {-1.5, -3.0});
  expect_values(lin(tensor({{{1.0, 0.0, -1.0}}, {{2.0, 1.0, 0.5}}}, float64)), {2, 1, 2},
                {-1.5, -3.0, 6.0, 15.0});
  expect_error([&] { lin(zeros({2, 4}, float64)); }, {"linear", "[2,4]", "[2,3]"});
  expect_error([&] { lin(zeros({2, 3}, float32)); }, {"linear", "float32", "float64"});

  nn::Linear nobias(3, 2, options(float64, /*bias=*/false));
  BOOST_TEST(!nobias.bias.defined());
  BOOST_TEST((names_of(nobias) == std::vector<std::string>{"weight"}));
  set_values(nobias.weight, tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, float64));
  expect_values(nobias(x), {2, 2}, {-2.0, -2.0, 5.5, 16.0});

  expect_error([] { nn::Linear(0, 2); }, {"Linear", "positive"});
}

BOOST_AUTO_TEST_CASE(linear_gradients) {
  nn::Linear lin(3, 2, options(float64));
  set_values(lin.weight, tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, float64));
  Tensor x = tensor({{1.0, 0.0, -1.0}, {2.0, 1.0, 0.5}}, float64).requires_grad_();
  lin(x).sum().backward();
  // d/dW sum(x·Wᵀ + b) = 1ᵀ·x (column sums of x in every row), d/db = N, d/dx = 1·W.
  expect_values(lin.weight.grad(), {2, 3}, {3.0, 1.0, -0.5, 3.0, 1.0, -0.5});
  expect_values(lin.bias.grad(), {2}, {2.0, 2.0});
  expect_values(x.grad(), {2, 3}, {5.0, 7.0, 9.0, 5.0, 7.0, 9.0});
}

BOOST_AUTO_TEST_CASE(linear_default_init_bounds) {
  manual_seed(11);
  nn::Linear lin(784, 256);
  BOOST_TEST(lin.weight.dtype() == float32);
  BOOST_TEST((lin.weight.shape() == Shape{256, 784}));
  BOOST_TEST((lin.bias.shape() == Shape{256}));
  // Bounds as float32 holds them (the distribution is built from the rounded bound).
  const double bound = static_cast<float>(1.0 / std::sqrt(784.0));
  Stats w = stats(lin.weight), b = stats(lin.bias);
  BOOST_TEST(w.min >= -bound);
  BOOST_TEST(w.max <= bound);
  BOOST_TEST(b.min >= -bound);
  BOOST_TEST(b.max <= bound);
  // ...and they fill that range: U(-a, a) has std a/√3.
  BOOST_TEST(w.max > 0.99 * bound);
  BOOST_TEST(w.min < -0.99 * bound);
  BOOST_TEST(std::abs(w.std / (bound / std::sqrt(3.0)) - 1.0) < 0.02, "weight std " << w.std);
  BOOST_TEST(std::abs(w.mean) < 0.01 * bound);
  BOOST_TEST(b.max > 0.8 * bound);
  BOOST_TEST(b.min < -0.8 * bound);

  nn::Linear small(4, 3, options(float64));
  BOOST_TEST(small.weight.dtype() == float64);
  BOOST_TEST(small.bias.dtype() == float64);
  Stats s = stats(small.weight);
  BOOST_TEST(s.min >= -0.5);
  BOOST_TEST(s.max <= 0.5);
}

BOOST_AUTO_TEST_CASE(linear_init_std_option) {
  manual_seed(12);
  nn::LinearOptions o;
  o.init_std = 0.01;
  nn::Linear lin(784, 256, o);
  Stats w = stats(lin.weight);
  BOOST_TEST(std::abs(w.std / 0.01 - 1.0) < 0.05, "weight std " << w.std);
  BOOST_TEST(std::abs(w.mean) < 0.001, "weight mean " << w.mean);
  // Normal, not the default uniform: 200,704 samples reach beyond 3.8σ, outside ±1/√784.
  BOOST_TEST(w.max > 0.038);
  BOOST_TEST(w.min < -0.038);
  Stats b = stats(lin.bias);
  BOOST_TEST(b.min == 0.0);
  BOOST_TEST(b.max == 0.0);
  BOOST_TEST(lin.bias.requires_grad());
}

BOOST_AUTO_TEST_CASE(same_seed_same_initial_weights) {
  manual_seed(2024);
  nn::MLP a({20, 16, 4});
  manual_seed(2024);
  nn::MLP b({20, 16, 4});
  manual_seed(2025);
  nn::MLP c({20, 16, 4});
  const auto pa = a.parameters(), pb = b.parameters(), pc = c.parameters();
  BOOST_REQUIRE_EQUAL(pa.size(), 4u);
  for (std::size_t i = 0; i < pa.size(); ++i) {
    BOOST_TEST(pa[i].impl() != pb[i].impl());
    BOOST_TEST((to_xarray<float>(pa[i]) == to_xarray<float>(pb[i])));
    BOOST_TEST((to_xarray<float>(pa[i]) != to_xarray<float>(pc[i])));
  }
}

// ---- nn::init -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(init_normal_and_uniform) {
  manual_seed(5);
  Tensor t = empty({200, 100}, float64);
  Tensor& r = nn::init::normal_(t, 2.0, 0.5);
  BOOST_TEST(&r == &t);
  Stats n = stats(t);
  BOOST_TEST(std::abs(n.mean - 2.0) < 0.01, "mean " << n.mean);
  BOOST_TEST(std::abs(n.std - 0.5) < 0.01, "std " << n.std);

  Tensor u = empty({200, 100}, float64);
  nn::init::uniform_(u, -2.0, 3.0);
  Stats s = stats(u);
  BOOST_TEST(s.min >= -2.0);
  BOOST_TEST(s.max < 3.0);
  BOOST_TEST(s.min < -1.99);
  BOOST_TEST(s.max > 2.99);
  BOOST_TEST(std::abs(s.mean - 0.5) < 0.03, "mean " << s.mean);

  Tensor z = ones({3}, float64);
  nn::init::zeros_(z);
  expect_values(z, {3}, {0, 0, 0});
  nn::init::constant_(z, 0.25);
  expect_values(z, {3}, {0.25, 0.25, 0.25});

  // The initialisers work on parameters (leaves that require grad) without recording.
  Tensor p = zeros({4, 4}, float64).requires_grad_();
  const auto v0 = p.version();
  nn::init::normal_(p);
  BOOST_TEST(p.is_leaf());
  BOOST_TEST(p.version() > v0);
  BOOST_TEST(stats(p).max != 0.0);

  expect_error(
      [] {
        Tensor i = zeros({2}, int64);
        nn::init::normal_(i);
      },
      {"normal_", "int64"});
  Tensor base = zeros({3, 4}, float64);
  Tensor tr = base.t();
  expect_error([&] { nn::init::uniform_(tr); }, {"uniform_", "contiguous"});
}

BOOST_AUTO_TEST_CASE(init_calculate_gain) {
  BOOST_TEST(nn::init::calculate_gain("linear") == 1.0);
  BOOST_TEST(nn::init::calculate_gain("sigmoid") == 1.0);
  BOOST_TEST(nn::init::calculate_gain("conv2d") == 1.0);
  BOOST_TEST(nn::init::calculate_gain("tanh") == 5.0 / 3.0);
  BOOST_TEST(nn::init::calculate_gain("relu") == std::sqrt(2.0));
  BOOST_TEST(nn::init::calculate_gain("leaky_relu") == std::sqrt(2.0 / (1.0 + 0.01 * 0.01)));
  BOOST_TEST(nn::init::calculate_gain("leaky_relu", std::sqrt(5.0)) == std::sqrt(1.0 / 3.0),
             boost::test_tools::tolerance(1e-15));
  BOOST_TEST(nn::init::calculate_gain("selu") == 0.75);
  expect_error([] { nn::init::calculate_gain("swish"); }, {"calculate_gain", "swish"});
}

BOOST_AUTO_TEST_CASE(init_fans) {
  auto [fi, fo] = nn::init::fans(empty({16, 3, 5, 5}));
  BOOST_TEST(fi == 75.0);   // 3·5·5
  BOOST_TEST(fo == 400.0);  // 16·5·5
  auto [fi2, fo2] = nn::init::fans(empty({256, 784}));
  BOOST_TEST(fi2 == 784.0);
  BOOST_TEST(fo2 == 256.0);
  expect_error([] { nn::init::fans(empty({5})); }, {"init", "[5]"});
}

BOOST_AUTO_TEST_CASE(init_xavier_bounds) {
  manual_seed(6);
  Tensor t = empty({300, 200}, float64);
  nn::init::xavier_uniform_(t);
  const double a = std::sqrt(6.0 / 500.0);
  Stats s = stats(t);
  BOOST_TEST(s.min >= -a);
  BOOST_TEST(s.max <= a);
  BOOST_TEST(s.max > 0.99 * a);
  BOOST_TEST(s.min < -0.99 * a);
  nn::init::xavier_uniform_(t, 2.0);
  s = stats(t);
  BOOST_TEST(s.max <= 2 * a);
  BOOST_TEST(s.max > 1.98 * a);

  nn::init::xavier_normal_(t);
  s = stats(t);
  BOOST_TEST(std::abs(s.std / std::sqrt(2.0 / 500.0) - 1.0) < 0.02, "std " << s.std);
}

BOOST_AUTO_TEST_CASE(init_kaiming_bounds_and_std) {
  manual_seed(7);
  Tensor t = empty({300, 200}, float64);
  // Defaults: a = 0, fan_in, leaky_relu -> gain √2, bound √2·√(3/200).
  nn::init::kaiming_uniform_(t);
  const double b = std::sqrt(2.0) * std::sqrt(3.0 / 200.0);
  Stats s = stats(t);
  BOOST_TEST(s.min >= -b);
  BOOST_TEST(s.max <= b);
  BOOST_TEST(s.max > 0.99 * b);
  BOOST_TEST(s.min < -0.99 * b);
  // fan_out with relu: √2·√(3/300).
  nn::init::kaiming_uniform_(t, 0.0, nn::init::FanMode::fan_out, "relu");
  const double bo = std::sqrt(2.0) * std::sqrt(3.0 / 300.0);
  s = stats(t);
  BOOST_TEST(s.max <= bo);
  BOOST_TEST(s.max > 0.99 * bo);
  // Linear's default: a = √5 gives U(±1/√fan_in).
  nn::init::kaiming_uniform_(t, std::sqrt(5.0));
  s = stats(t);
  BOOST_TEST(s.max <= 1.0 / std::sqrt(200.0) * (1 + 1e-12));
  BOOST_TEST(s.max > 0.99 / std::sqrt(200.0));

  nn::init::kaiming_normal_(t, 0.0, nn::init::FanMode::fan_in, "relu");
  s = stats(t);
  BOOST_TEST(std::abs(s.std / (std::sqrt(2.0) / std::sqrt(200.0)) - 1.0) < 0.02, "std " << s.std);
  BOOST_TEST(std::abs(s.mean) < 0.003);
  nn::init::kaiming_normal_(t, 0.0, nn::init::FanMode::fan_out, "tanh");
  s = stats(t);
  BOOST_TEST(std::abs(s.std / ((5.0 / 3.0) / std::sqrt(300.0)) - 1.0) < 0.02, "std " << s.std);
}

// ---- registration errors ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(duplicate_names_throw) {
  Block block;
  expect_error([&] { block.add_parameter("scale", zeros({2})); },
               {"register_parameter", "'scale'", "already exists"});
  expect_error([&] { block.add_module("inner", std::make_shared<nn::ReLU>()); },
               {"register_module", "'inner'", "already exists"});
  expect_error([&] { block.add_parameter("idx", zeros({2}, int64)); },
               {"register_parameter", "'idx'", "float"});
  expect_error([&] { block.add_module("none", nullptr); }, {"register_module", "null"});
  // The failed registrations left the module unchanged.
  BOOST_TEST((names_of(block) ==
              std::vector<std::string>{"scale", "shift", "inner.weight", "inner.bias"}));
  BOOST_TEST(block.children().size() == 1u);
  block.add_parameter("extra", zeros({1}));
  BOOST_TEST(names_of(block)[2] == "extra");
}

BOOST_AUTO_TEST_SUITE_END()
