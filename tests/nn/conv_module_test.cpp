// The convolutional layers: Conv2d (parameters, torch's default initialisation, options),
// MaxPool2d / AvgPool2d / AdaptiveAvgPool2d, Flatten, and nn::CNN (parameter names, both input
// layouts, the same gradients as torch's layer order, a few training steps).
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/nn/cnn.hpp"
#include "xgrad/nn/conv.hpp"
#include "xgrad/nn/flatten.hpp"
#include "xgrad/nn/pool.hpp"
#include "xgrad/nn/sequential.hpp"
#include "xgrad/ops/conv.hpp"
#include "xgrad/ops/pool.hpp"
#include "xgrad/optim/adam.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;
using xgrad::testing::values_of;

namespace {

std::vector<std::string> names_of(const nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& [name, p] : m.named_parameters()) out.push_back(name);
  return out;
}

// Largest |value| and the standard deviation of a tensor's values.
std::pair<double, double> absmax_std(const Tensor& t) {
  const auto v = values_of(t);
  double m = 0, s = 0, s2 = 0;
  for (double x : v) {
    m = std::max(m, std::abs(x));
    s += x;
    s2 += x * x;
  }
  const double n = static_cast<double>(v.size());
  return {m, std::sqrt(s2 / n - (s / n) * (s / n))};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(conv_module)

BOOST_AUTO_TEST_CASE(conv2d_parameters_and_torch_init) {
  manual_seed(3);
  nn::Conv2d conv(16, 32, 3, {.padding = 1});
  BOOST_TEST(conv.type_name() == "Conv2d");
  BOOST_TEST(names_of(conv) == (std::vector<std::string>{"weight", "bias"}));
  BOOST_TEST(conv.weight.shape() == (Shape{32, 16, 3, 3}));
  BOOST_TEST(conv.bias.shape() == (Shape{32}));
  BOOST_TEST(conv.weight.requires_grad());
  BOOST_TEST((conv.weight.dtype() == float32));
  // kaiming_uniform(a = √5): bound = √(2/(1+5))·√(3/fan_in) = 1/√fan_in, fan_in = 16·3·3.
  const double bound = 1.0 / std::sqrt(144.0);
  auto [wmax, wstd] = absmax_std(conv.weight);
  BOOST_TEST(wmax <= bound);
  BOOST_TEST(wmax > 0.95 * bound);
  BOOST_TEST(std::abs(wstd - bound / std::sqrt(3.0)) < 0.05 * bound);  // U(-b, b): std b/√3
  auto [bmax, bstd] = absmax_std(conv.bias);
  BOOST_TEST(bmax <= bound);
  BOOST_TEST(bstd > 0.0);
  // groups shrink fan_in; bias = false drops the parameter; dtype and a rectangular kernel.
  nn::Conv2d grouped(8, 4, {3, 2}, {.groups = 4, .bias = false, .dtype = float64});
  BOOST_TEST(names_of(grouped) == (std::vector<std::string>{"weight"}));
  BOOST_TEST(!grouped.bias.defined());
  BOOST_TEST(grouped.weight.shape() == (Shape{4, 2, 3, 2}));
  BOOST_TEST((grouped.weight.dtype() == float64));
  BOOST_TEST(absmax_std(grouped.weight).first <= 1.0 / std::sqrt(2.0 * 3 * 2));
}

BOOST_AUTO_TEST_CASE(conv2d_forward_uses_its_options) {
  manual_seed(4);
  nn::Conv2d conv(
      4, 6, {3, 2},
      {.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}, .groups = 2, .dtype = float64});
  Tensor x = uniform({2, 4, 7, 6}, -1, 1, float64);
  Tensor y = conv(x);
  Tensor ref = conv2d(x, conv.weight, conv.bias, {2, 1}, {1, 0}, {1, 2}, 2);
  expect_values(y, ref.shape(), values_of(ref), 0);
  BOOST_TEST(y.shape() == (Shape{2, 6, 4, 4}));
  y.sum().backward();
  BOOST_TEST(conv.weight.grad().defined());
  BOOST_TEST(conv.bias.grad().defined());
  expect_error([&] { conv(zeros({2, 6, 7, 6}, float64)); }, {"conv2d", "channel mismatch"});
  expect_error([] { nn::Conv2d(0, 4, 3); }, {"Conv2d", "channels"});
  expect_error([] { nn::Conv2d(4, 4, {3, 0}); }, {"Conv2d", "kernel size", "3x0"});
  expect_error([] { nn::Conv2d(4, 6, 3, {.groups = 4}); }, {"Conv2d", "groups 4"});
}

BOOST_AUTO_TEST_CASE(pooling_and_flatten_modules) {
  manual_seed(5);
  Tensor x = uniform({2, 3, 8, 6}, -1, 1, float64);
  nn::MaxPool2d mp(2);
  BOOST_TEST(mp.type_name() == "MaxPool2d");
  BOOST_TEST(mp.parameters().empty());
  expect_values(mp(x), {2, 3, 4, 3}, values_of(max_pool2d(x, 2, 2, 0)), 0);
  nn::MaxPool2d mp3(3, {.stride = 2, .padding = 1});
  expect_values(mp3(x), {2, 3, 4, 3}, values_of(max_pool2d(x, 3, 2, 1)), 0);
  nn::AvgPool2d ap({2, 3}, {.stride = Size2{1, 3}});
  BOOST_TEST(ap.type_name() == "AvgPool2d");
  expect_values(ap(x), {2, 3, 7, 2}, values_of(avg_pool2d(x, {2, 3}, {1, 3}, 0)), 0);
  nn::AdaptiveAvgPool2d aap({2, 1});
  expect_values(aap(x), {2, 3, 2, 1}, values_of(adaptive_avg_pool2d(x, {2, 1})), 0);
  nn::Flatten fl;
  BOOST_TEST(fl.type_name() == "Flatten");
  BOOST_TEST(fl(x).shape() == (Shape{2, 144}));
  BOOST_TEST(nn::Flatten(0, 1)(x).shape() == (Shape{6, 8, 6}));
  BOOST_TEST(nn::Flatten(-2)(x).shape() == (Shape{2, 3, 48}));
  expect_error([&] { nn::Flatten(5)(x); }, {"flatten", "[2,3,8,6]"});
  expect_error([] { nn::MaxPool2d(0); }, {"MaxPool2d", "kernel size"});
  expect_error([] { nn::AvgPool2d({2, -1}); }, {"AvgPool2d", "kernel size"});
  // In a Sequential, with parameters named by index.
  nn::Sequential seq{std::make_shared<nn::Conv2d>(3, 4, 3, nn::Conv2dOptions{.padding = 1}),
                     std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>()};
  BOOST_TEST(names_of(seq) == (std::vector<std::string>{"0.weight", "0.bias"}));
  BOOST_TEST(seq(uniform({2, 3, 8, 6}, -1, 1)).shape() == (Shape{2, 48}));
}

BOOST_AUTO_TEST_CASE(cnn_parameters_and_shapes) {
  manual_seed(6);
  nn::CNN cnn;
  BOOST_TEST(cnn.type_name() == "CNN");
  BOOST_TEST(names_of(cnn) ==
             (std::vector<std::string>{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                       "fc.weight", "fc.bias"}));
  std::vector<Shape> shapes;
  std::int64_t count = 0;
  for (const auto& p : cnn.parameters()) {
    shapes.push_back(p.shape());
    count += p.numel();
  }
  BOOST_TEST(shapes ==
             (std::vector<Shape>{{16, 1, 3, 3}, {16}, {32, 16, 3, 3}, {32}, {10, 1568}, {10}}));
  BOOST_TEST(count == 20490);
  BOOST_TEST(cnn.children().size() == 3u);
  Tensor x = uniform({3, 784}, 0, 1);
  Tensor y = cnn(x);
  BOOST_TEST(y.shape() == (Shape{3, 10}));
  // [N,784] and [N,1,28,28] are the same images.
  expect_values(cnn(x.reshape({3, 1, 28, 28})), {3, 10}, values_of(y), 0);
  expect_error([&] { cnn(zeros({3, 783})); }, {"CNN", "[N,784] or [N,1,28,28]", "[3,783]"});
  expect_error([&] { cnn(zeros({3, 3, 28, 28})); }, {"CNN", "[3,3,28,28]"});
  nn::CNN cnn64(float64);
  BOOST_TEST((cnn64.fc->weight.dtype() == float64));
}

BOOST_AUTO_TEST_CASE(cnn_gradients_equal_torch_layer_order) {
  // CNN applies ReLU after each max pool; torch's model (and bench/torch_cnn.cpp) before it.
  // Values and every parameter gradient must agree, ties and dead units included.
  manual_seed(7);
  nn::CNN cnn(float64);
  Tensor x = uniform({4, 1, 28, 28}, 0, 1, float64);
  // Whole-zero rows make windows whose maxima tie at 0 after ReLU.
  x = concat({x, zeros({1, 1, 28, 28}, float64)}, 0);
  Tensor labels = tensor({1.0, 3.0, 5.0, 7.0, 9.0}, int64);
  Tensor loss = cross_entropy(cnn(x), labels);
  loss.backward();
  std::vector<std::vector<double>> grads;
  for (const auto& p : cnn.parameters()) grads.push_back(values_of(p.grad()));
  cnn.zero_grad();
  // The torch order, written out with the CNN's own parameters.
  Tensor h = max_pool2d(relu(conv2d(x, cnn.conv1->weight, cnn.conv1->bias, 1, 1)), 2);
  h = max_pool2d(relu(conv2d(h, cnn.conv2->weight, cnn.conv2->bias, 1, 1)), 2);
  Tensor ref = cross_entropy(linear(flatten(h, 1), cnn.fc->weight, cnn.fc->bias), labels);
  BOOST_TEST(ref.item() == loss.item());
  ref.backward();
  std::size_t i = 0;
  for (const auto& p : cnn.parameters()) expect_values(p.grad(), p.shape(), grads[i++], 1e-14);
}

BOOST_AUTO_TEST_CASE(cnn_training_steps_lower_the_loss) {
  manual_seed(8);
  nn::CNN cnn;
  optim::Adam opt(cnn.parameters(), optim::AdamOptions(1e-3));
  Tensor x = uniform({16, 784}, 0, 1);
  Tensor labels = arange(16.0, int64);
  for (std::int64_t i = 0; i < 16; ++i) labels.data_ptr<std::int64_t>()[i] %= 10;
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    Tensor loss = cross_entropy(cnn(x), labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  BOOST_TEST(std::isfinite(last));
  BOOST_TEST(last < 0.6 * first);  // 2.31 -> 1.20 after 30 steps
}

BOOST_AUTO_TEST_CASE(gradient_penalty_through_conv_and_pool_layers) {
  // A gradient penalty (WGAN-GP's ‖∇ₓD‖²) of D = Σ h², h = AdaptiveAvgPool2d(AvgPool2d(
  // MaxPool2d(conv2d(x, w, b)))): its gradient in (w, b) is a second derivative of the block,
  // recorded by create_graph through the conv and pool backward ops. Every derivative of the
  // penalty is checked (so up to the block's fourth): gradcheck, gradgradcheck, forward mode.
  manual_seed(9);
  Tensor x = uniform({1, 2, 6, 6}, -1, 1, float64);
  nn::MaxPool2d mp(2, {.stride = 1});
  nn::AvgPool2d ap(2);
  nn::AdaptiveAvgPool2d aap({2, 1});
  const auto penalty = [&](const std::vector<Tensor>& in) {
    enable_grad on;  // gradcheck's finite differences call f under no_grad
    Tensor xi = x.detach().requires_grad_();
    Tensor h = aap(ap(mp(conv2d(xi, in[0], in[1], 1, 1))));
    Tensor gx = grad({(h * h).sum()}, {xi}, {}, std::nullopt, /*create_graph=*/true)[0];
    // The penalty's terms: the checks seed every element, which covers their sum (and keeps
    // this test to the conv, pool and elementwise ops).
    return gx * gx;
  };
  Tensor w = uniform({3, 2, 3, 3}, -1, 1, float64).requires_grad_();
  Tensor b = uniform({3}, -1, 1, float64).requires_grad_();
  xgrad::testing::expect_gradcheck(penalty, {w, b});
}

BOOST_AUTO_TEST_SUITE_END()
