// A program that uses xgrad as a library: fits a small network to y = sin(3x) on synthetic
// data, then saves the model and the optimizer in a checkpoint and reads the file back.
// One source, three ways of building it (docs/using.md; `tools/dev consumers` does all three):
//   - CMake, installed xgrad:  examples/consumer/CMakeLists.txt, find_package(xgrad)
//   - CMake, xgrad's sources:  examples/consumer_subdir/CMakeLists.txt, add_subdirectory
//   - pkg-config:              g++ main.cpp $(pkg-config --cflags --libs xgrad)
//
//   app [CHECKPOINT]   (default consumer.safetensors). Exit code 0 when the loss went down.
#include <cstdio>
#include <memory>
#include <string>
#include <xtensor/xmath.hpp>

#include "xgrad/xgrad.hpp"

using namespace xgrad;

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "consumer.safetensors";
  try {
    // 64 points x in [-1, 1), target sin(3x): shapes [64, 1].
    manual_seed(7);
    const Tensor x = arange(-1.0, 1.0, 2.0 / 64).reshape({64, 1});
    const Tensor y =
        from_xarray(xt::xarray<float>(xt::sin(3.0f * to_xarray<float>(x))));  // xtensor

    nn::Sequential model;  // 1 -> 16 -> 1
    model.push_back(std::make_shared<nn::Linear>(1, 16))
        .push_back(std::make_shared<nn::Tanh>())
        .push_back(std::make_shared<nn::Linear>(16, 1));
    optim::Adam opt(model.parameters(), optim::AdamOptions(0.05));

    double first = 0, last = 0;
    for (int step = 1; step <= 100; ++step) {
      opt.zero_grad();
      Tensor loss = mse_loss(model(x), y);
      loss.backward();
      opt.step();
      last = loss.item();
      if (step == 1) first = last;
      if (step == 1 || step % 25 == 0) std::printf("step %3d  loss %.5f\n", step, last);
    }

    io::save_checkpoint(path, model, opt, {.metadata = {{"steps", "100"}}});
    const auto [tensors, metadata] = io::load_safetensors(path);
    std::printf("saved %s: %zu tensors, %zu parameters\n", path.c_str(), tensors.size(),
                model.named_parameters().size());
    if (!(last < first / 2)) {
      std::fprintf(stderr, "error: the loss did not go down (%.5f -> %.5f)\n", first, last);
      return 1;
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
