// Trains a small MLP on two Gaussian blobs with the user-defined Adagrad of adagrad.hpp (the
// optimizer docs/optimizers.md writes on the xgrad::optim::Optimizer interface), printing the
// loss and accuracy after each epoch.
//
//   build/examples/example_adagrad [--epochs N] [--lr LR]
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "adagrad.hpp"
#include "xgrad/data/dataloader.hpp"
#include "xgrad/data/dataset.hpp"
#include "xgrad/nn/mlp.hpp"

using namespace xgrad;

int main(int argc, char** argv) {
  int epochs = 10;
  double lr = 0.1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--epochs") == 0) {
      epochs = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--lr") == 0) {
      lr = std::atof(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: %s [--epochs N] [--lr LR]\n", argv[0]);
      return 2;
    }
  }

  // 200 points: class 0 around (-2, -2), class 1 around (2, 2), unit variance.
  const std::int64_t n = 100;
  manual_seed(3);
  xt::xarray<float> x = to_xarray<float>(randn({2 * n, 2}));
  xt::xarray<std::int64_t> y = xt::zeros<std::int64_t>({static_cast<std::size_t>(2 * n)});
  for (std::size_t i = 0; i < static_cast<std::size_t>(2 * n); ++i) {
    const bool one = i >= static_cast<std::size_t>(n);
    x(i, 0) += one ? 2.0f : -2.0f;
    x(i, 1) += one ? 2.0f : -2.0f;
    y(i) = one ? 1 : 0;
  }
  const data::TensorDataset train{from_xarray(x), from_xarray(y)};
  data::DataLoader loader(train, {.batch_size = 20, .shuffle = true, .seed = 5});

  manual_seed(11);
  nn::MLP model({2, 16, 2});
  try {
    example::Adagrad opt(model.parameters(), lr);
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      for (auto& batch : loader) {
        opt.zero_grad();
        Tensor loss = cross_entropy(model(batch.inputs), batch.labels);
        loss.backward();
        opt.step();
      }
      no_grad guard;
      Tensor logits = model(train.inputs());
      const double loss = cross_entropy(logits, train.labels()).item();
      const double acc = eq(argmax(logits, 1), train.labels()).to(float64).mean().item();
      std::printf("epoch %2d  loss %.4f  accuracy %.3f\n", epoch, loss, acc);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
