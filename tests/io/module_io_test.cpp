// io::save / io::load of a module's state_dict as safetensors, and checkpoints that carry
// buffers: a BatchNorm model trained for 20 steps, saved and loaded into a fresh model (or
// checkpointed and resumed), evaluates bit for bit as the original, with equal running
// statistics — the data loss of the issue (running statistics reset on resume) is gone.
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/io/checkpoint.hpp"
#include "xgrad/io/module_io.hpp"
#include "xgrad/io/safetensors.hpp"
#include "xgrad/nn/activation.hpp"
#include "xgrad/nn/batchnorm.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/sequential.hpp"
#include "xgrad/ops/loss.hpp"
#include "xgrad/optim/sgd.hpp"

namespace fs = std::filesystem;
using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_error_exact;
using xgrad::testing::values_of;

namespace {

// A folder of its own per test case and process (ctest runs cases in parallel).
fs::path case_dir() {
  const std::string name = boost::unit_test::framework::current_test_case().p_name.get() + "_" +
                           std::to_string(::getpid());
  const fs::path dir = fs::temp_directory_path() / ("xgrad_module_io_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Linear(6, 8), BatchNorm1d(8), ReLU, Linear(8, 3), from seed `seed`.
std::shared_ptr<nn::Sequential> bn_model(std::uint64_t seed) {
  manual_seed(seed);
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(6, 8), std::make_shared<nn::BatchNorm1d>(8),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(8, 3)});
}

std::shared_ptr<nn::BatchNorm1d> bn_of(const nn::Sequential& m) {
  return std::dynamic_pointer_cast<nn::BatchNorm1d>(m.children()[1].second);
}

// Labels i % 3 for a batch of n.
Tensor labels(std::int64_t n) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 0; i < n; ++i) v.push_back(i % 3);
  return from_data(v.data(), {n});
}

// `steps` SGD steps (lr 0.1, momentum 0.9) of cross-entropy on random batches of 16.
void train(nn::Module& model, optim::Optimizer& opt, int steps) {
  model.train();
  for (int i = 0; i < steps; ++i) {
    Tensor loss = cross_entropy(model(randn({16, 6})), labels(16));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
}

void expect_same_state(const nn::Module& a, const nn::Module& b) {
  const auto sa = a.state_dict(), sb = b.state_dict();
  BOOST_REQUIRE_EQUAL(sa.size(), sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) {
    BOOST_TEST(sa[i].first == sb[i].first);
    BOOST_TEST((sa[i].second.dtype() == sb[i].second.dtype()), sa[i].first);
    BOOST_TEST(values_of(sa[i].second) == values_of(sb[i].second), sa[i].first);
  }
}

// Bit-identical eval outputs on a fixed batch (exact float comparison).
void expect_same_eval(nn::Module& a, nn::Module& b) {
  a.eval();
  b.eval();
  manual_seed(99);
  Tensor x = randn({7, 6});
  const auto ya = values_of(a(x)), yb = values_of(b(x));
  BOOST_TEST(ya == yb);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(module_io)

BOOST_AUTO_TEST_CASE(save_writes_the_state_dict_as_safetensors) {
  const fs::path dir = case_dir();
  auto model = bn_model(1);
  const std::string path = (dir / "model.safetensors").string();
  io::save(*model, path);
  auto [tensors, metadata] = io::load_safetensors(path);
  BOOST_TEST(metadata.empty());
  std::vector<std::string> names;
  for (const auto& [name, t] : tensors) names.push_back(name);
  // Sorted by name in the file (a std::map); the same set as state_dict().
  BOOST_TEST((names == std::vector<std::string>{
                           "0.bias", "0.weight", "1.bias", "1.num_batches_tracked",
                           "1.running_mean", "1.running_var", "1.weight", "3.bias", "3.weight"}));
  BOOST_TEST((tensors.at("1.num_batches_tracked").dtype() == int64));
  BOOST_TEST((tensors.at("1.num_batches_tracked").shape() == Shape{}));
  BOOST_TEST((tensors.at("0.weight").shape() == Shape{8, 6}));
  BOOST_TEST(values_of(tensors.at("3.weight")) == values_of(model->parameters()[4]));
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(batchnorm_model_round_trip_is_bit_identical) {
  const fs::path dir = case_dir();
  auto model = bn_model(1);
  optim::SGD opt(model->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  train(*model, opt, 20);
  BOOST_TEST(bn_of(*model)->num_batches_tracked.item<std::int64_t>() == 20);
  const std::string path = (dir / "bn.safetensors").string();
  io::save(*model, path);

  auto fresh = bn_model(2);  // other initial weights, reset statistics
  BOOST_TEST(values_of(bn_of(*fresh)->running_mean) != values_of(bn_of(*model)->running_mean));
  const nn::IncompatibleKeys keys = io::load(*fresh, path);
  BOOST_TEST(keys.empty());
  expect_same_state(*model, *fresh);
  BOOST_TEST(bn_of(*fresh)->num_batches_tracked.item<std::int64_t>() == 20);
  BOOST_TEST(values_of(bn_of(*fresh)->running_var) == values_of(bn_of(*model)->running_var));
  expect_same_eval(*model, *fresh);

  // Without the buffers (what a parameters-only save gave), the eval outputs differ: the
  // statistics matter.
  auto stale = bn_model(3);
  nn::NamedTensors params_only = model->named_parameters();
  const auto k = stale->load_state_dict(params_only, /*strict=*/false);
  BOOST_TEST((k.missing_keys == std::vector<std::string>{"1.running_mean", "1.running_var",
                                                         "1.num_batches_tracked"}));
  model->eval();
  stale->eval();
  manual_seed(99);
  Tensor x = randn({7, 6});
  BOOST_TEST(values_of((*model)(x)) != values_of((*stale)(x)));
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(load_errors_name_the_file) {
  const fs::path dir = case_dir();
  auto model = bn_model(1);
  const std::string path = (dir / "bn.safetensors").string();
  io::save(*model, path);
  nn::Sequential other{std::make_shared<nn::Linear>(6, 8), std::make_shared<nn::ReLU>(),
                       std::make_shared<nn::Linear>(8, 4)};
  expect_error_exact(
      [&] { io::load(other, path); },
      "io::load: '" + path +
          "': load_state_dict: cannot load a state_dict into Sequential: missing key(s) "
          "'2.weight', '2.bias'; unexpected key(s) '1.bias', '1.num_batches_tracked', "
          "'1.running_mean', '1.running_var', '1.weight', '3.bias', '3.weight'");
  // Non-strict: the matching keys load, the others come back.
  nn::Sequential part{std::make_shared<nn::Linear>(6, 8)};
  const auto keys = io::load(part, path, /*strict=*/false);
  BOOST_TEST(keys.missing_keys.empty());
  BOOST_TEST(keys.unexpected_keys.size() == 7u);
  BOOST_TEST(values_of(part.parameters()[0]) == values_of(model->parameters()[0]));
  // A missing file is the safetensors reader's error, naming it.
  expect_error([&] { io::load(*model, (dir / "nope.safetensors").string()); },
               {"nope.safetensors"});
  // io::save into a missing folder names the file.
  expect_error([&] { io::save(*model, (dir / "no" / "m.safetensors").string()); },
               {"m.safetensors"});
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(checkpoint_carries_batchnorm_buffers) {
  const fs::path dir = case_dir();
  const std::string path = (dir / "ckpt.safetensors").string();
  auto model = bn_model(1);
  optim::SGD opt(model->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  train(*model, opt, 20);
  io::save_checkpoint(path, *model, opt);
  const auto file = io::load_safetensors(path);
  BOOST_TEST(file.tensors.count("1.running_mean") == 1u);
  BOOST_TEST(file.tensors.count("1.running_var") == 1u);
  BOOST_TEST(file.tensors.count("1.num_batches_tracked") == 1u);

  // Resume into a fresh model and optimizer: same state, same eval outputs, and the same
  // numbers after 5 more steps of both.
  auto resumed = bn_model(2);
  optim::SGD opt2(resumed->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  io::load_checkpoint(path, *resumed, opt2);  // restores the random generator too
  expect_same_state(*model, *resumed);
  BOOST_TEST(bn_of(*resumed)->num_batches_tracked.item<std::int64_t>() == 20);
  expect_same_eval(*model, *resumed);

  manual_seed(5);
  train(*model, opt, 5);
  manual_seed(5);
  train(*resumed, opt2, 5);
  expect_same_state(*model, *resumed);
  expect_same_eval(*model, *resumed);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
