// torch_mlp.cpp - libtorch reference benchmark for the xgrad "main job": a 784-256-128-10
// ReLU MLP on Fashion-MNIST (the run, flags and output: torch_common.hpp).
#include "torch_common.hpp"

namespace {

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

struct MlpImpl : torch::nn::Module {
  MlpImpl()
      : fc1(register_module("fc1", torch::nn::Linear(784, 256))),
        fc2(register_module("fc2", torch::nn::Linear(256, 128))),
        fc3(register_module("fc3", torch::nn::Linear(128, 10))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(fc1->forward(x));
    x = torch::relu(fc2->forward(x));
    return fc3->forward(x);  // logits
  }

  torch::nn::Linear fc1, fc2, fc3;
};
TORCH_MODULE(Mlp);

}  // namespace

int main(int argc, char** argv) {
  return bench::run_benchmark<Mlp>(argc, argv, "mlp");
}
