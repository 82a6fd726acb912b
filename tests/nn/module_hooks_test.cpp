// Module hooks: register_forward_pre_hook and register_forward_hook see and may replace the
// input / output; register_full_backward_hook receives the gradients torch's
// register_full_backward_hook gives on the same modules (tests/data/torch_state/hooks.safetensors,
// made by tools/torch_state.py) and may replace grad_input; each handle's remove() detaches
// its hook.
#include <memory>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/io/safetensors.hpp"
#include "xgrad/nn/activation.hpp"
#include "xgrad/nn/batchnorm.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/module.hpp"
#include "xgrad/nn/sequential.hpp"

using namespace xgrad;
using xgrad::testing::expect_error_exact;
using xgrad::testing::expect_values;
using xgrad::testing::values_of;
namespace fwd = xgrad::autograd::forward_ad;

namespace {

// Linear(3, 2) in float64 with W = [[1, 2, 3], [4, 5, 6]], b = [0.5, -1].
std::shared_ptr<nn::Linear> hand_linear() {
  nn::LinearOptions o;
  o.dtype = float64;
  auto lin = std::make_shared<nn::Linear>(3, 2, o);
  lin->load_state_dict(
      nn::NamedTensors{{"weight", tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, float64)},
                       {"bias", tensor({0.5, -1.0}, float64)}});
  return lin;
}

Tensor x_hand() {
  return tensor({{1.0, 0.0, -1.0}, {2.0, 1.0, 0.5}}, float64);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(module_hooks)

BOOST_AUTO_TEST_CASE(forward_pre_hook_sees_and_replaces_the_input) {
  auto lin = hand_linear();
  std::vector<std::vector<double>> seen;
  nn::Module* who = nullptr;
  auto observe = lin->register_forward_pre_hook([&](nn::Module& m, const Tensor& x) {
    who = &m;
    seen.push_back(values_of(x));
  });
  auto doubler =
      lin->register_forward_pre_hook([](nn::Module&, const Tensor& x) { return x * 2.0; });
  // x·Wᵀ + b for 2x: [[-4+0.5, -4-1], [11+0.5, 32-1]].
  expect_values((*lin)(x_hand()), {2, 2}, {-3.5, -5.0, 11.5, 31.0});
  BOOST_TEST(who == lin.get());
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST(seen[0] == values_of(x_hand()));
  BOOST_TEST(doubler.active());
  doubler.remove();
  BOOST_TEST(!doubler.active());
  expect_values((*lin)(x_hand()), {2, 2}, {-1.5, -3.0, 6.0, 15.0});
  BOOST_TEST(seen.size() == 2u);
  observe.remove();
  (*lin)(x_hand());
  BOOST_TEST(seen.size() == 2u);
}

BOOST_AUTO_TEST_CASE(forward_hook_sees_and_replaces_the_output) {
  auto lin = hand_linear();
  Tensor seen_in, seen_out;
  auto h1 = lin->register_forward_hook([&](nn::Module& m, const Tensor& in, const Tensor& out) {
    BOOST_TEST(&m == lin.get());
    seen_in = in;
    seen_out = out;
    return out + 1.0;  // replaces the output
  });
  // The second hook sees the first one's replacement.
  std::vector<double> second;
  auto h2 = lin->register_forward_hook(
      [&](nn::Module&, const Tensor&, const Tensor& out) { second = values_of(out); });
  Tensor x = x_hand().requires_grad_();
  Tensor y = (*lin)(x);
  BOOST_TEST(values_of(seen_in) == values_of(x));
  expect_values(seen_out, {2, 2}, {-1.5, -3.0, 6.0, 15.0});
  expect_values(y, {2, 2}, {-0.5, -2.0, 7.0, 16.0});
  BOOST_TEST(second == values_of(y));
  // Gradients flow through the replacement: d/dx sum(y) = 1·W.
  y.sum().backward();
  expect_values(x.grad(), {2, 3}, {5, 7, 9, 5, 7, 9});
  h1.remove();
  expect_values((*lin)(x_hand()), {2, 2}, {-1.5, -3.0, 6.0, 15.0});
  // Handles are safe to remove twice, when default-constructed, and after the module is gone.
  h1.remove();
  nn::HookHandle none;
  none.remove();
  BOOST_TEST(!none.active());
  BOOST_TEST(h2.active());
  lin.reset();
  BOOST_TEST(!h2.active());
  h2.remove();
}

BOOST_AUTO_TEST_CASE(a_hook_may_remove_itself) {
  auto lin = hand_linear();
  int calls = 0;
  nn::HookHandle handle;
  handle = lin->register_forward_hook([&](nn::Module&, const Tensor&, const Tensor&) {
    ++calls;
    handle.remove();
  });
  (*lin)(x_hand());
  (*lin)(x_hand());
  BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(backward_hook_matches_torch) {
  // torch: Sequential(Linear(4, 3), BatchNorm1d(3), Tanh(), Linear(3, 2)).double() in training
  // mode, register_full_backward_hook on the whole model, on [1] and on [3]; backward of
  // sum(model(x) * g).
  const auto golden =
      io::load_safetensors(XGRAD_TEST_DATA_DIR "/torch_state/hooks.safetensors").tensors;
  nn::LinearOptions lo;
  lo.dtype = float64;
  nn::BatchNormOptions bo;
  bo.dtype = float64;
  auto bn = std::make_shared<nn::BatchNorm1d>(3, bo);
  auto fc = std::make_shared<nn::Linear>(3, 2, lo);
  nn::Sequential seq{std::make_shared<nn::Linear>(4, 3, lo), bn, std::make_shared<nn::Tanh>(), fc};
  nn::NamedTensors weights;
  for (const auto& [name, t] : golden)
    if (name.rfind("model.", 0) == 0) weights.emplace_back(name.substr(6), t);
  BOOST_REQUIRE(seq.load_state_dict(weights).empty());

  std::map<std::string, std::pair<Tensor, Tensor>> seen;
  std::vector<std::string> order;
  auto record = [&](const std::string& key) {
    return [&, key](nn::Module&, const Tensor& gi, const Tensor& go) {
      seen[key] = {gi, go};
      order.push_back(key);
    };
  };
  seq.register_full_backward_hook(record("seq"));
  bn->register_full_backward_hook(record("bn"));
  fc->register_full_backward_hook(record("fc"));
  Tensor x = golden.at("x").clone().requires_grad_();
  (seq(x) * golden.at("g")).sum().backward();

  BOOST_TEST((order == std::vector<std::string>{"fc", "bn", "seq"}));
  for (const std::string key : {"seq", "bn", "fc"}) {
    BOOST_TEST_CONTEXT("module " << key) {
      const Tensor& gi = golden.at(key + ".grad_input");
      const Tensor& go = golden.at(key + ".grad_output");
      expect_values(seen.at(key).first, gi.shape(), values_of(gi), 1e-12);
      expect_values(seen.at(key).second, go.shape(), values_of(go), 1e-12);
    }
  }
  expect_values(x.grad(), {5, 4}, values_of(golden.at("x.grad")), 1e-12);
  // The whole model's grad_input is x's gradient, its grad_output g.
  BOOST_TEST(values_of(seen.at("seq").first) == values_of(x.grad()));
  BOOST_TEST(values_of(seen.at("seq").second) == values_of(golden.at("g")));
}

BOOST_AUTO_TEST_CASE(backward_hook_replaces_grad_input_and_remove_stops_it) {
  auto lin = hand_linear();
  int calls = 0;
  auto handle =
      lin->register_full_backward_hook([&](nn::Module& m, const Tensor& gi, const Tensor& go) {
        BOOST_TEST(&m == lin.get());
        ++calls;
        // d sum(y)/dy = 1, d/dx = 1·W.
        expect_values(go, {2, 2}, {1, 1, 1, 1});
        expect_values(gi, {2, 3}, {5, 7, 9, 5, 7, 9});
        return gi * 10.0;
      });
  Tensor x = x_hand().requires_grad_();
  (*lin)(x).sum().backward();
  BOOST_TEST(calls == 1);
  expect_values(x.grad(), {2, 3}, {50, 70, 90, 50, 70, 90});
  // The parameters' gradients are the module's own, untouched by the hook.
  expect_values(lin->bias.grad(), {2}, {2, 2});

  // Under no_grad nothing is hooked; a removed hook no longer runs.
  {
    no_grad guard;
    (*lin)(x);
  }
  handle.remove();
  Tensor x2 = x_hand().requires_grad_();
  (*lin)(x2).sum().backward();
  BOOST_TEST(calls == 1);
  expect_values(x2.grad(), {2, 3}, {5, 7, 9, 5, 7, 9});

  // A replacement of the wrong shape is refused, naming the module.
  lin->register_full_backward_hook(
      [](nn::Module&, const Tensor&, const Tensor&) { return zeros({3}, float64); });
  Tensor x3 = x_hand().requires_grad_();
  Tensor y3 = (*lin)(x3).sum();
  expect_error_exact([&] { y3.backward(); },
                     "Linear: a backward hook returned a grad_input of shape [3] (float64) for an "
                     "input of shape [2,3] (float64)");
}

BOOST_AUTO_TEST_CASE(backward_hook_on_an_input_without_grad) {
  // As torch: the hook runs with an undefined grad_input once grad_output is known.
  auto lin = hand_linear();
  Tensor seen_gi = ones({1}), seen_go;
  lin->register_full_backward_hook([&](nn::Module&, const Tensor& gi, const Tensor& go) {
    seen_gi = gi;
    seen_go = go;
  });
  (*lin)(x_hand()).sum().backward();
  BOOST_TEST(!seen_gi.defined());
  expect_values(seen_go, {2, 2}, {1, 1, 1, 1});
  expect_values(lin->weight.grad(), {2, 3}, {3, 1, -0.5, 3, 1, -0.5});

  auto other = hand_linear();
  other->register_full_backward_hook(
      [](nn::Module&, const Tensor&, const Tensor& go) { return go; });
  Tensor y = (*other)(x_hand()).sum();
  expect_error_exact([&] { y.backward(); },
                     "Linear: a backward hook returned a grad_input, but the module's input "
                     "needs no gradient");
}

BOOST_AUTO_TEST_CASE(no_backward_hook_runs_once_the_module_is_gone) {
  int calls = 0;
  Tensor x = x_hand().requires_grad_();
  Tensor y;
  {
    auto lin = hand_linear();
    lin->register_full_backward_hook([&](nn::Module&, const Tensor&, const Tensor&) { ++calls; });
    y = (*lin)(x).sum();
  }
  y.backward();  // the graph holds the weights it saved, not the module
  BOOST_TEST(calls == 0);
  expect_values(x.grad(), {2, 3}, {5, 7, 9, 5, 7, 9});
}

// Under create_graph the hooks see recorded gradients and their replacement stays recorded:
// f = Σ Y², Y = X·Wᵀ + b, with a hook doubling grad_input, gives ∂f/∂X = 2·(2Y·W) = 4Y·W.
// Differentiating that again along U passes through Y's history (∂f/∂Y = 2Y), hence through
// the module once more: as in torch, the hook runs again there (grad_output is known again)
// and doubles that pass too, giving 2·4·(U·Wᵀ)·W.
BOOST_AUTO_TEST_CASE(backward_hook_under_create_graph) {
  auto lin = hand_linear();
  std::vector<bool> recorded;  // per call: did the hook get recorded gradients?
  lin->register_full_backward_hook([&](nn::Module&, const Tensor& gi, const Tensor& go) {
    recorded.push_back(go.requires_grad() && gi.requires_grad());
    return gi * 2.0;
  });
  Tensor x = x_hand().requires_grad_();
  Tensor y = (*lin)(x);
  Tensor gx = grad({sum(y * y)}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  BOOST_TEST(recorded == std::vector<bool>{true});
  BOOST_TEST(gx.requires_grad());
  // 4·Y·W with Y = [[-1.5, -3], [6, 15]] (x_hand·Wᵀ + b).
  expect_values(gx, {2, 3}, {-54, -72, -90, 264, 348, 432});
  Tensor u = tensor({{1.0, 0.0, 0.0}, {0.0, 1.0, -1.0}}, float64);
  // U·Wᵀ = [[1, 4], [-1, -1]]; 8·(U·Wᵀ)·W = [[136, 176, 216], [-40, -56, -72]].
  expect_values(grad({gx}, {x}, {u})[0], {2, 3}, {136, 176, 216, -40, -56, -72});
  BOOST_TEST((recorded == std::vector<bool>{true, false}));
}

// Forward mode passes through a hooked module: the tangent of Y along U is U·Wᵀ.
BOOST_AUTO_TEST_CASE(backward_hook_keeps_forward_mode_tangents) {
  auto lin = hand_linear();
  lin->register_full_backward_hook([](nn::Module&, const Tensor&, const Tensor&) {});
  Tensor x = x_hand().requires_grad_();
  fwd::dual_level level;
  Tensor y = (*lin)(fwd::make_dual(x, tensor({{1.0, 0.0, 0.0}, {0.0, 1.0, -1.0}}, float64)));
  expect_values(fwd::unpack_dual(y).tangent, {2, 2}, {1, 4, -1, -1});
}

BOOST_AUTO_TEST_SUITE_END()
