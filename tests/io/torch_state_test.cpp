// The PyTorch round trip, both ways, for the MLP (784-256-128-10), the CNN, an LSTM model and a
// BatchNorm model. Golden files in tests/data/torch_state/ (see tools/torch_state.py):
//   torch_M.safetensors   torch-trained weights (torch's state_dict, written by the script)
//   xgrad_M.safetensors   xgrad-trained weights (io::save, written by examples/export_state.cpp)
//   M_logits.safetensors  a fixed input, torch's eval-mode logits with torch_M's weights, and
//                         torch's logits with xgrad_M's weights loaded into the torch model
// io::load takes either file strictly (same names, shapes and dtypes as torch's), and xgrad's
// float32 logits agree with torch's within 1e-6 (relative to max(1, |logit|)).
#include <functional>
#include <memory>
#include <string>

#include "test_util.hpp"
#include "xgrad/io/module_io.hpp"
#include "xgrad/io/safetensors.hpp"
#include "xgrad/nn/activation.hpp"
#include "xgrad/nn/batchnorm.hpp"
#include "xgrad/nn/cnn.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/nn/rnn.hpp"
#include "xgrad/nn/sequential.hpp"

using namespace xgrad;
using xgrad::testing::expect_values;
using xgrad::testing::values_of;

namespace {

const std::string kDir = XGRAD_TEST_DATA_DIR "/torch_state/";

// The models of tools/torch_state.py, built as examples/export_state.cpp builds them.
std::shared_ptr<nn::Module> make_model(const std::string& name) {
  if (name == "mlp") return std::make_shared<nn::MLP>(std::vector<std::int64_t>{784, 256, 128, 10});
  if (name == "cnn") return std::make_shared<nn::CNN>();
  if (name == "lstm")
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::LSTM>(4, 8), std::make_shared<nn::Linear>(8, 3)});
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(6, 8), std::make_shared<nn::BatchNorm1d>(8),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(8, 3)});
}

// Loads `who`_M's weights into a fresh xgrad model and compares its eval-mode logits on the
// golden input with torch's.
void check_logits(const std::string& model, const std::string& who) {
  auto m = make_model(model);
  const nn::IncompatibleKeys keys = io::load(*m, kDir + who + "_" + model + ".safetensors");
  BOOST_TEST(keys.empty());
  const auto golden = io::load_safetensors(kDir + model + "_logits.safetensors").tensors;
  const Tensor& input = golden.at("input");
  const Tensor& expected = golden.at(who + "_logits");
  BOOST_TEST((input.dtype() == float32));
  m->eval();
  Tensor logits;
  {
    no_grad guard;
    logits = (*m)(input);
  }
  BOOST_TEST((logits.dtype() == float32));
  expect_values(logits, expected.shape(), values_of(expected), 1e-6);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(torch_state)

BOOST_AUTO_TEST_CASE(torch_trained_mlp_in_xgrad) {
  check_logits("mlp", "torch");
}
BOOST_AUTO_TEST_CASE(xgrad_trained_mlp_in_torch) {
  check_logits("mlp", "xgrad");
}
BOOST_AUTO_TEST_CASE(torch_trained_cnn_in_xgrad) {
  check_logits("cnn", "torch");
}
BOOST_AUTO_TEST_CASE(xgrad_trained_cnn_in_torch) {
  check_logits("cnn", "xgrad");
}
BOOST_AUTO_TEST_CASE(torch_trained_lstm_in_xgrad) {
  check_logits("lstm", "torch");
}
BOOST_AUTO_TEST_CASE(xgrad_trained_lstm_in_torch) {
  check_logits("lstm", "xgrad");
}
BOOST_AUTO_TEST_CASE(torch_trained_batchnorm_in_xgrad) {
  check_logits("bn", "torch");
}
BOOST_AUTO_TEST_CASE(xgrad_trained_batchnorm_in_torch) {
  check_logits("bn", "xgrad");
}

BOOST_AUTO_TEST_CASE(torch_files_have_xgrad_s_names_shapes_and_dtypes) {
  // The torch state_dicts hold exactly xgrad's state_dict keys, in shape and dtype; the
  // BatchNorm's running statistics were trained (not the initial 0 / 1) and num_batches_tracked
  // is torch's int64 step count.
  for (const std::string model : {"mlp", "cnn", "lstm", "bn"}) {
    BOOST_TEST_CONTEXT("model " << model) {
      auto m = make_model(model);
      const auto file = io::load_safetensors(kDir + "torch_" + model + ".safetensors").tensors;
      const auto sd = m->state_dict();
      BOOST_TEST(file.size() == sd.size());
      for (const auto& [name, t] : sd) {
        BOOST_REQUIRE_MESSAGE(file.count(name), "torch file lacks " << name);
        BOOST_TEST((file.at(name).shape() == t.shape()), name);
        BOOST_TEST((file.at(name).dtype() == t.dtype()), name);
      }
    }
  }
  const auto bn = io::load_safetensors(kDir + "torch_bn.safetensors").tensors;
  BOOST_TEST(bn.at("1.num_batches_tracked").item<std::int64_t>() == 5);
  BOOST_TEST(values_of(bn.at("1.running_var")) != std::vector<double>(8, 1.0));
  const auto xbn = io::load_safetensors(kDir + "xgrad_bn.safetensors").tensors;
  BOOST_TEST(xbn.at("1.num_batches_tracked").item<std::int64_t>() == 5);
}

BOOST_AUTO_TEST_SUITE_END()
