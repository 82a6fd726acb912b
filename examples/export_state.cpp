// Trains four small xgrad models for a few SGD steps and saves each with io::save, for
// PyTorch to load (tools/torch_state.py golden reads them, loads them into the same torch
// models and records torch's logits; tests/io/torch_state_test.cpp then checks that xgrad's
// logits on these weights match torch's). The models, named as tools/torch_state.py names them:
//   mlp    nn::MLP({784, 256, 128, 10})
//   cnn    nn::CNN
//   lstm   nn::Sequential{LSTM(4, 8), Linear(8, 3)}        x [T, N, 4] -> per-step logits [T, N, 3]
//   bn     nn::Sequential{Linear(6, 8), BatchNorm1d(8), ReLU, Linear(8, 3)}
//
//   build/examples/example_export_state [OUT_DIR]    (default: tests/data/torch_state)
//
// writes OUT_DIR/xgrad_<model>.safetensors. Everything is seeded: the weights depend only on
// xgrad's generator and arithmetic.
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/io/module_io.hpp"
#include "xgrad/nn/activation.hpp"
#include "xgrad/nn/batchnorm.hpp"
#include "xgrad/nn/cnn.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/nn/rnn.hpp"
#include "xgrad/nn/sequential.hpp"
#include "xgrad/ops/loss.hpp"
#include "xgrad/ops/shape.hpp"
#include "xgrad/optim/sgd.hpp"
#include "xgrad/xgrad.hpp"

using namespace xgrad;

namespace {

// Labels 0..classes-1 in turn, shuffled by a permutation from the default generator.
Tensor labels(std::int64_t n, std::int64_t classes) {
  Tensor perm = randperm(n);
  const std::int64_t* p = perm.data_ptr<std::int64_t>();
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = p[i] % classes;
  return from_data(v.data(), {n});
}

// Five SGD steps (lr 0.1) of mean cross-entropy on random batches from `batch`.
void train(nn::Module& model, const std::function<std::pair<Tensor, Tensor>()>& batch) {
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
  model.train();
  for (int step = 0; step < 5; ++step) {
    auto [x, y] = batch();
    Tensor logits = model(x);
    const std::int64_t classes = logits.size(-1);
    Tensor loss = cross_entropy(reshape(logits, {-1, classes}), reshape(y, {-1}));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  model.eval();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string out = argc > 1 ? argv[1] : "tests/data/torch_state";
  auto images = [] { return std::pair{rand({16, 784}), labels(16, 10)}; };
  struct Job {
    std::string name;
    std::function<std::shared_ptr<nn::Module>()> make;
    std::function<std::pair<Tensor, Tensor>()> batch;
  };
  const std::vector<Job> jobs{
      {"mlp",
       [] {
         return std::make_shared<nn::MLP>(std::vector<std::int64_t>{784, 256, 128, 10});
       },
       images},
      {"cnn", [] { return std::make_shared<nn::CNN>(); }, images},
      {"lstm",
       [] {
         return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
             std::make_shared<nn::LSTM>(4, 8), std::make_shared<nn::Linear>(8, 3)});
       },
       [] {
         return std::pair{randn({5, 4, 4}), reshape(labels(20, 3), {5, 4})};
       }},
      {"bn",
       [] {
         return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
             std::make_shared<nn::Linear>(6, 8), std::make_shared<nn::BatchNorm1d>(8),
             std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(8, 3)});
       },
       [] {
         return std::pair{randn({16, 6}), labels(16, 3)};
       }},
  };
  for (const auto& job : jobs) {
    manual_seed(2024);
    auto model = job.make();
    train(*model, job.batch);
    const std::string path = out + "/xgrad_" + job.name + ".safetensors";
    io::save(*model, path);
    std::printf("%s: %zu tensors -> %s\n", job.name.c_str(), model->state_dict().size(),
                path.c_str());
  }
  return 0;
}
