// torch_cnn.cpp - libtorch reference benchmark for xgrad's nn::CNN: conv 1->16 3x3 pad 1,
// ReLU, max-pool 2, conv 16->32 3x3 pad 1, ReLU, max-pool 2, flatten, linear 1568->10, on
// Fashion-MNIST (the run, flags and output: torch_common.hpp). Convolutions go to oneDNN
// (libtorch's mkldnn path) on libtorch's OpenMP threads; the final Linear to OpenBLAS.
#include "torch_common.hpp"

namespace {

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

struct CnnImpl : torch::nn::Module {
  CnnImpl()
      : conv1(register_module("conv1",
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1)))),
        conv2(register_module("conv2",
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).padding(1)))),
        fc(register_module("fc", torch::nn::Linear(32 * 7 * 7, 10))) {}

  // x: [N, 784] (flattened 28x28 images) or [N, 1, 28, 28].
  torch::Tensor forward(torch::Tensor x) {
    x = x.view({x.size(0), 1, 28, 28});
    x = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);  // [N, 16, 14, 14]
    x = torch::max_pool2d(torch::relu(conv2->forward(x)), 2);  // [N, 32, 7, 7]
    return fc->forward(x.flatten(1));                          // logits [N, 10]
  }

  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc;
};
TORCH_MODULE(Cnn);

}  // namespace

int main(int argc, char** argv) {
  return bench::run_benchmark<Cnn>(argc, argv, "cnn");
}
