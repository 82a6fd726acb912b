// A module's whole state, as torch.nn.Module has it: register_buffer / buffers / named_buffers,
// state_dict() (names and order as torch's: own parameters, own buffers, then children; a
// Sequential's children by index), load_state_dict (in place, under no_grad, all-or-nothing;
// its error messages word for word; strict = false returning the missing and unexpected keys).
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "test_util.hpp"
#include "xgrad/nn/activation.hpp"
#include "xgrad/nn/batchnorm.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/nn/module.hpp"
#include "xgrad/nn/rnn.hpp"
#include "xgrad/nn/sequential.hpp"
#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/linalg.hpp"
#include "xgrad/ops/normalization.hpp"
#include "xgrad/optim/sgd.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_error_exact;
using xgrad::testing::expect_values;
using xgrad::testing::values_of;

namespace {

std::vector<std::string> keys_of(const nn::NamedTensors& named) {
  std::vector<std::string> out;
  for (const auto& [name, t] : named) out.push_back(name);
  return out;
}

using Keys = std::vector<std::string>;

// Own parameter, persistent and non-persistent buffers, and a child with buffers of its own,
// registered in a mixed order.
class Stateful : public nn::Module {
 public:
  Stateful() {
    count = register_buffer("count", zeros({}, int64));
    scale = register_parameter("scale", ones({3}));
    norm = register_module("norm", std::make_shared<nn::BatchNorm1d>(3));
    scratch = register_buffer("scratch", zeros({2}), /*persistent=*/false);
  }
  void add_buffer(const std::string& name, Tensor t) { register_buffer(name, std::move(t)); }
  void add_parameter(const std::string& name, Tensor t) { register_parameter(name, std::move(t)); }
  void add_module(const std::string& name, std::shared_ptr<nn::Module> m) {
    register_module(name, std::move(m));
  }
  Tensor count, scale, scratch;
  std::shared_ptr<nn::BatchNorm1d> norm;

 protected:
  Tensor forward(const Tensor& x) override { return (*norm)(x)*scale; }
};

// docs/modules.md's example module, as written there.
class Block : public nn::Module {
 public:
  Block(std::int64_t in, std::int64_t out) {
    fc = register_module("fc", std::make_shared<nn::Linear>(in, out));
    bn = register_module("bn", std::make_shared<nn::BatchNorm1d>(out));
    scale = register_parameter("scale", ones({out}));
    seen = register_buffer("seen", zeros({}));  // float32 0-d
    cache = register_buffer("cache", zeros({out}), /*persistent=*/false);
  }
  std::string type_name() const override { return "Block"; }

  std::shared_ptr<nn::Linear> fc;
  std::shared_ptr<nn::BatchNorm1d> bn;
  Tensor scale, seen, cache;

 protected:
  Tensor forward(const Tensor& x) override {  // x [N, in] -> [N, out]
    if (is_training()) {
      no_grad guard;
      seen.add_(1.0);
    }
    return relu((*bn)((*fc)(x))) * scale;
  }
};

std::shared_ptr<nn::Sequential> bn_model(Dtype dtype = float32) {
  nn::LinearOptions lo;
  lo.dtype = dtype;
  nn::BatchNormOptions bo;
  bo.dtype = dtype;
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(6, 8, lo), std::make_shared<nn::BatchNorm1d>(8, bo),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(8, 3, lo)});
}

std::shared_ptr<nn::Sequential> small_seq() {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(4, 3), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(3, 2)});
}

// A state_dict of `m` with every value replaced by a fresh tensor of value `v` (int64 buffers
// get the integer v).
nn::NamedTensors filled(const nn::Module& m, double v) {
  nn::NamedTensors out;
  for (const auto& [name, t] : m.state_dict())
    out.emplace_back(name, full(t.shape(), v, t.dtype()));
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(module_state)

// ---- buffers ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(buffers_are_named_listed_and_not_parameters) {
  Stateful m;
  BOOST_TEST((keys_of(m.named_parameters()) == Keys{"scale", "norm.weight", "norm.bias"}));
  BOOST_TEST((keys_of(m.named_buffers()) == Keys{"count", "scratch", "norm.running_mean",
                                                 "norm.running_var", "norm.num_batches_tracked"}));
  const auto buffers = m.buffers();
  BOOST_REQUIRE_EQUAL(buffers.size(), 5u);
  BOOST_TEST(buffers[0].impl() == m.count.impl());
  BOOST_TEST(buffers[1].impl() == m.scratch.impl());
  BOOST_TEST(buffers[2].impl() == m.norm->running_mean.impl());
  BOOST_TEST(buffers[4].impl() == m.norm->num_batches_tracked.impl());
  for (const auto& b : buffers) BOOST_TEST(!b.requires_grad());
  BOOST_TEST((m.count.dtype() == int64));
  BOOST_TEST(m.parameters().size() == 3u);
  // Buffers carry their qualified names, as parameters do, also after registration.
  BOOST_TEST(m.norm->running_var.name() == "norm.running_var");
  nn::Sequential outer;
  auto inner = std::make_shared<Stateful>();
  outer.push_back(inner);
  BOOST_TEST(inner->count.name() == "0.count");
  BOOST_TEST(inner->norm->num_batches_tracked.name() == "0.norm.num_batches_tracked");
  BOOST_TEST(keys_of(outer.named_buffers()).back() == "0.norm.num_batches_tracked");
}

BOOST_AUTO_TEST_CASE(batchnorm_buffers_are_torch_s) {
  nn::BatchNorm2d bn(4);
  BOOST_TEST((keys_of(bn.state_dict()) ==
              Keys{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}));
  const auto sd = bn.state_dict();
  BOOST_TEST((sd[4].second.dtype() == int64));
  BOOST_TEST((sd[4].second.shape() == Shape{}));
  BOOST_TEST((sd[2].second.shape() == Shape{4}));
  nn::BatchNormOptions o;
  o.track_running_stats = false;
  o.affine = false;
  nn::BatchNorm1d plain(4, o);
  BOOST_TEST(plain.state_dict().empty());
  BOOST_TEST(plain.buffers().empty());
}

BOOST_AUTO_TEST_CASE(register_buffer_errors) {
  Stateful m;
  expect_error_exact([&] { m.add_buffer("count", zeros({1})); },
                     "register_buffer: a buffer named 'count' already exists");
  expect_error_exact([&] { m.add_buffer("scale", zeros({1})); },
                     "register_buffer: a parameter named 'scale' already exists");
  expect_error_exact([&] { m.add_buffer("norm", zeros({1})); },
                     "register_buffer: a child named 'norm' already exists");
  expect_error_exact([&] { m.add_parameter("count", zeros({1})); },
                     "register_parameter: a buffer named 'count' already exists");
  expect_error_exact([&] { m.add_module("scratch", std::make_shared<nn::ReLU>()); },
                     "register_module: a buffer named 'scratch' already exists");
  expect_error_exact([&] { m.add_buffer("a.b", zeros({1})); },
                     "register_buffer: the name 'a.b' must be non-empty and contain no '.'");
  expect_error_exact([&] { m.add_buffer("", zeros({1})); },
                     "register_buffer: the name '' must be non-empty and contain no '.'");
  expect_error_exact([&] { m.add_buffer("w", zeros({1}).requires_grad_()); },
                     "register_buffer: buffer 'w' requires grad (a buffer is not learned; "
                     "register it as a parameter)");
  expect_error_exact([&] { m.add_buffer("u", Tensor()); },
                     "register_buffer: buffer 'u' is undefined");
  BOOST_TEST(m.named_buffers().size() == 5u);  // unchanged
}

// ---- state_dict ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(docs_example_module) {
  // The names docs/modules.md lists for its Block.
  Block b(4, 3);
  BOOST_TEST((keys_of(b.named_parameters()) ==
              Keys{"scale", "fc.weight", "fc.bias", "bn.weight", "bn.bias"}));
  BOOST_TEST((keys_of(b.named_buffers()) == Keys{"seen", "cache", "bn.running_mean",
                                                 "bn.running_var", "bn.num_batches_tracked"}));
  BOOST_TEST((keys_of(b.state_dict()) == Keys{"scale", "seen", "fc.weight", "fc.bias", "bn.weight",
                                              "bn.bias", "bn.running_mean", "bn.running_var",
                                              "bn.num_batches_tracked"}));
  b(randn({5, 4}));
  b(randn({5, 4}));
  b.eval();
  b(randn({5, 4}));
  BOOST_TEST(b.seen.item() == 2.0);
  BOOST_TEST(b.bn->num_batches_tracked.item<std::int64_t>() == 2);
}

BOOST_AUTO_TEST_CASE(state_dict_has_torch_names_and_order) {
  // torch: nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
  // .state_dict().keys()
  auto seq = bn_model();
  BOOST_TEST((keys_of(seq->state_dict()) == Keys{"0.weight", "0.bias", "1.weight", "1.bias",
                                                 "1.running_mean", "1.running_var",
                                                 "1.num_batches_tracked", "3.weight", "3.bias"}));
  // Per module: own parameters, own persistent buffers, then the children.
  Stateful m;
  BOOST_TEST((keys_of(m.state_dict()) == Keys{"scale", "count", "norm.weight", "norm.bias",
                                              "norm.running_mean", "norm.running_var",
                                              "norm.num_batches_tracked"}));
  // The MLP and the LSTM carry torch's names.
  nn::MLP mlp({4, 3, 2});
  BOOST_TEST(
      (keys_of(mlp.state_dict()) == Keys{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  nn::LSTM lstm(3, 5);
  BOOST_TEST((keys_of(lstm.state_dict()) ==
              Keys{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}));
  BOOST_TEST((lstm.state_dict()[0].second.shape() == Shape{20, 3}));
}

BOOST_AUTO_TEST_CASE(mlp_with_batch_norm) {
  // torch: fc1, bn1, fc2, bn2, fc3 assigned in that order; forward fc -> bn -> relu.
  manual_seed(4);
  nn::LinearOptions lo;
  lo.dtype = float64;
  nn::MLP mlp({4, 5, 3, 2}, lo, /*batch_norm=*/true);
  BOOST_TEST((keys_of(mlp.state_dict()) ==
              Keys{"fc1.weight", "fc1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean",
                   "bn1.running_var", "bn1.num_batches_tracked", "fc2.weight", "fc2.bias",
                   "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var",
                   "bn2.num_batches_tracked", "fc3.weight", "fc3.bias"}));
  BOOST_REQUIRE_EQUAL(mlp.norms().size(), 2u);
  BOOST_TEST((mlp.norms()[1]->running_mean.dtype() == float64));
  Tensor x = randn({6, 4}, float64);
  const auto& l = mlp.layers();
  auto& n = mlp.norms();
  auto bn = [](const nn::BatchNorm1d& b, const Tensor& h) {
    return batch_norm(h, Tensor(), Tensor(), b.weight, b.bias, true, 0.1, 1e-5);
  };
  Tensor h1 = relu(bn(*n[0], linear(x, l[0]->weight, l[0]->bias)));
  Tensor h2 = relu(bn(*n[1], linear(h1, l[1]->weight, l[1]->bias)));
  Tensor expected = linear(h2, l[2]->weight, l[2]->bias);
  BOOST_TEST(values_of(mlp(x)) == values_of(expected));
  BOOST_TEST(n[0]->num_batches_tracked.item<std::int64_t>() == 1);
  nn::MLP plain({4, 5, 2});
  BOOST_TEST(plain.norms().empty());
  BOOST_TEST(plain.named_buffers().empty());
}

BOOST_AUTO_TEST_CASE(state_dict_shares_storage_without_history) {
  auto seq = small_seq();
  auto sd = seq->state_dict();
  auto lin = std::dynamic_pointer_cast<nn::Linear>(seq->children()[0].second);
  BOOST_TEST(!sd[0].second.requires_grad());
  BOOST_TEST(sd[0].second.impl() != lin->weight.impl());
  BOOST_TEST(lin->weight.requires_grad());
  sd[1].second.fill_(0.25);  // writes into the model, as torch's state_dict tensors do
  expect_values(lin->bias, {3}, {0.25, 0.25, 0.25});
}

// ---- load_state_dict ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(load_state_dict_copies_in_place) {
  manual_seed(1);
  auto a = bn_model(), b = bn_model();
  a->train();
  (*a)(randn({10, 6}));  // running statistics move, num_batches_tracked = 1
  auto bn_b = std::dynamic_pointer_cast<nn::BatchNorm1d>(b->children()[1].second);
  const Tensor w = b->parameters()[0];
  const auto impl = w.impl();
  optim::SGD opt(b->parameters(), optim::SGDOptions(0.1));
  const auto version = w.version();
  const nn::IncompatibleKeys keys = b->load_state_dict(a->state_dict());
  BOOST_TEST(keys.empty());
  // Same tensors (the optimizer's), new values, still leaves requiring grad.
  BOOST_TEST(b->parameters()[0].impl() == impl);
  BOOST_TEST(w.version() > version);
  BOOST_TEST(w.is_leaf());
  BOOST_TEST(w.requires_grad());
  const auto sa = a->state_dict(), sb = b->state_dict();
  for (std::size_t i = 0; i < sa.size(); ++i)
    BOOST_TEST(values_of(sa[i].second) == values_of(sb[i].second), sa[i].first);
  BOOST_TEST(bn_b->num_batches_tracked.item<std::int64_t>() == 1);
  // Nothing was recorded: a step of the optimizer works on the loaded values.
  b->eval();
  Tensor y = (*b)(randn({2, 6}));
  y.sum().backward();
  opt.step();

  // From a std::map (what io::load_safetensors gives).
  auto c = bn_model();
  std::map<std::string, Tensor> dict;
  for (const auto& [name, t] : filled(*c, 2.0)) dict[name] = t;
  BOOST_TEST(c->load_state_dict(dict).empty());
  expect_values(c->parameters()[0], {8, 6}, std::vector<double>(48, 2.0));
  auto bn_c = std::dynamic_pointer_cast<nn::BatchNorm1d>(c->children()[1].second);
  BOOST_TEST(bn_c->num_batches_tracked.item<std::int64_t>() == 2);
  expect_values(bn_c->running_var, {8}, std::vector<double>(8, 2.0));
}

BOOST_AUTO_TEST_CASE(load_state_dict_error_messages) {
  auto seq = small_seq();
  const auto good = filled(*seq, 1.0);
  const auto before = values_of(seq->parameters()[0]);

  auto without = [&](const std::string& key) {
    nn::NamedTensors d;
    for (const auto& e : good)
      if (e.first != key) d.push_back(e);
    return d;
  };
  expect_error_exact([&] { seq->load_state_dict(without("2.bias")); },
                     "load_state_dict: cannot load a state_dict into Sequential: missing key(s) "
                     "'2.bias'");
  auto extra = good;
  extra.emplace_back("3.weight", zeros({2, 2}));
  expect_error_exact([&] { seq->load_state_dict(extra); },
                     "load_state_dict: cannot load a state_dict into Sequential: unexpected "
                     "key(s) '3.weight'");
  auto wrong_shape = good;
  wrong_shape[0].second = zeros({3, 5});
  expect_error_exact([&] { seq->load_state_dict(wrong_shape); },
                     "load_state_dict: cannot load a state_dict into Sequential: shape mismatch "
                     "for '0.weight': [3,5] in the state_dict, [3,4] in the model");
  auto wrong_dtype = good;
  wrong_dtype[1].second = zeros({3}, float64);
  expect_error_exact([&] { seq->load_state_dict(wrong_dtype); },
                     "load_state_dict: cannot load a state_dict into Sequential: dtype mismatch "
                     "for '0.bias': float64 in the state_dict, float32 in the model");
  // Everything at once, in one message: missing, unexpected, then each mismatch.
  auto all = without("2.weight");
  for (auto& e : all)
    if (e.first == "0.weight") e.second = zeros({3, 5});
  all.emplace_back("head.bias", zeros({2}));
  all.emplace_back("2.running_mean", zeros({2}));
  expect_error_exact([&] { seq->load_state_dict(all); },
                     "load_state_dict: cannot load a state_dict into Sequential: missing key(s) "
                     "'2.weight'; unexpected key(s) 'head.bias', '2.running_mean'; shape "
                     "mismatch for '0.weight': [3,5] in the state_dict, [3,4] in the model");
  // strict = false still refuses a shape mismatch, naming only that.
  expect_error_exact([&] { seq->load_state_dict(all, /*strict=*/false); },
                     "load_state_dict: cannot load a state_dict into Sequential: shape mismatch "
                     "for '0.weight': [3,5] in the state_dict, [3,4] in the model");
  auto twice = good;
  twice.push_back(good[0]);
  expect_error_exact([&] { seq->load_state_dict(twice); },
                     "load_state_dict: the state_dict has the key '0.weight' twice");
  auto undefined = good;
  undefined[2].second = Tensor();
  expect_error_exact([&] { seq->load_state_dict(undefined); },
                     "load_state_dict: the state_dict's tensor '2.weight' is undefined");
  // A refused load changes nothing.
  BOOST_TEST(values_of(seq->parameters()[0]) == before);
}

BOOST_AUTO_TEST_CASE(non_strict_load_returns_missing_and_unexpected_keys) {
  auto seq = small_seq();
  nn::NamedTensors d{{"2.weight", full({2, 3}, 0.5)},
                     {"extra", zeros({1})},
                     {"0.bias", full({3}, -1.0)},
                     {"1.weight", zeros({1})}};
  const nn::IncompatibleKeys keys = seq->load_state_dict(d, /*strict=*/false);
  BOOST_TEST((keys.missing_keys == Keys{"0.weight", "2.bias"}));
  BOOST_TEST((keys.unexpected_keys == Keys{"extra", "1.weight"}));
  BOOST_TEST(!keys.empty());
  // The keys that matched were loaded.
  expect_values(seq->state_dict()[1].second, {3}, {-1, -1, -1});
  expect_values(seq->state_dict()[2].second, {2, 3}, std::vector<double>(6, 0.5));
  // Non-persistent buffers are neither expected nor loaded.
  Stateful m;
  nn::NamedTensors sd = m.state_dict();
  sd.emplace_back("scratch", ones({2}));
  const auto k = m.load_state_dict(sd, /*strict=*/false);
  BOOST_TEST(k.missing_keys.empty());
  BOOST_TEST((k.unexpected_keys == Keys{"scratch"}));
  expect_values(m.scratch, {2}, {0, 0});
}

BOOST_AUTO_TEST_CASE(torch_sequential_state_dict_loads_unchanged) {
  // torch.nn.Sequential(Linear(4, 3), ReLU(), Linear(3, 2)).state_dict() keys and shapes, with
  // hand values: xgrad's Sequential takes it as it is and computes torch's function.
  auto seq = small_seq();
  nn::NamedTensors torch_sd{
      {"0.weight", tensor({{0.1, 0.2, 0.3, 0.4}, {-0.1, 0.0, 0.1, 0.2}, {0.5, -0.5, 0.5, -0.5}})},
      {"0.bias", tensor({0.0, 0.1, -0.2})},
      {"2.weight", tensor({{1.0, -1.0, 0.5}, {0.25, 0.5, -0.75}})},
      {"2.bias", tensor({0.5, -0.5})}};
  BOOST_TEST(seq->load_state_dict(torch_sd).empty());
  // x = [1, 2, 3, 4]: hidden = relu(x·W0ᵀ + b0) = [3, 1.1, 0], then h·W2ᵀ + b2.
  const double h0 = 0.1 * 1 + 0.2 * 2 + 0.3 * 3 + 0.4 * 4 + 0.0;
  const double h1 = -0.1 * 1 + 0.0 * 2 + 0.1 * 3 + 0.2 * 4 + 0.1;
  const double h2 = std::max(0.0, 0.5 * 1 - 0.5 * 2 + 0.5 * 3 - 0.5 * 4 - 0.2);
  expect_values((*seq)(tensor({{1.0, 2.0, 3.0, 4.0}})), {1, 2},
                {1.0 * h0 - 1.0 * h1 + 0.5 * h2 + 0.5, 0.25 * h0 + 0.5 * h1 - 0.75 * h2 - 0.5},
                1e-6);
}

BOOST_AUTO_TEST_SUITE_END()
