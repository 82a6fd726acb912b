// Trains a one-layer LSTM with a linear head to predict the next value of a noisy sine wave,
// printing the training loss every few steps and, at the end, the loss on held-out windows
// before and after training. Everything is seeded: two runs print the same numbers.
//
//   build/examples/example_lstm_sine [--steps N] [--print-every K] [--hidden H] [--lr LR]
//                                    [--seed S]
//
// The series is s_t = sin(2π·t/25) + 0.1·ε_t (ε ~ N(0,1)). A training batch is 16 random windows
// of 40 steps: input s[i .. i+40), target s[i+1 .. i+41), shapes [T=40, N=16, 1]. The model reads
// the window with nn::LSTM (hidden size 16), maps every hidden state to one number with
// nn::Linear, and is trained with Adam on the mean squared error of all 40 predictions.
// The last line is "final loss X (initial Y)": the held-out MSE after and before training.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/rnn.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/xgrad.hpp"

using namespace xgrad;

namespace {

constexpr std::int64_t kWindow = 40;  // time steps per sequence
constexpr std::int64_t kBatch = 16;   // sequences per batch

// Input and target windows starting at the given offsets: [T, N, 1] each.
std::pair<Tensor, Tensor> windows(const std::vector<float>& series,
                                  const std::vector<std::int64_t>& starts) {
  const auto n = static_cast<std::int64_t>(starts.size());
  std::vector<float> in(static_cast<std::size_t>(kWindow * n)), out(in.size());
  for (std::int64_t t = 0; t < kWindow; ++t)
    for (std::int64_t b = 0; b < n; ++b) {
      const auto i = static_cast<std::size_t>(starts[static_cast<std::size_t>(b)] + t);
      in[static_cast<std::size_t>(t * n + b)] = series[i];
      out[static_cast<std::size_t>(t * n + b)] = series[i + 1];
    }
  return {from_data(in.data(), {kWindow, n, 1}), from_data(out.data(), {kWindow, n, 1})};
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 300, print_every = 50;
  std::int64_t hidden = 16;
  double lr = 0.01;
  unsigned long seed = 0;
  for (int i = 1; i < argc; i += 2) {
    const bool has_value = i + 1 < argc;
    if (has_value && std::strcmp(argv[i], "--steps") == 0) {
      steps = std::atoi(argv[i + 1]);
    } else if (has_value && std::strcmp(argv[i], "--print-every") == 0) {
      print_every = std::atoi(argv[i + 1]);
    } else if (has_value && std::strcmp(argv[i], "--hidden") == 0) {
      hidden = std::atoll(argv[i + 1]);
    } else if (has_value && std::strcmp(argv[i], "--lr") == 0) {
      lr = std::atof(argv[i + 1]);
    } else if (has_value && std::strcmp(argv[i], "--seed") == 0) {
      seed = std::strtoul(argv[i + 1], nullptr, 10);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--steps N] [--print-every K] [--hidden H] [--lr LR] [--seed S]\n",
                   argv[0]);
      return 2;
    }
  }
  if (steps < 0 || print_every < 1 || hidden < 1 || !(lr > 0)) {
    std::fprintf(stderr, "%s: --steps must be >= 0, --print-every, --hidden and --lr positive\n",
                 argv[0]);
    return 2;
  }

  try {
    // The noisy series: 1,000 training points, then 300 held-out points.
    manual_seed(seed);
    const std::int64_t n_train = 1000, n_test = 300;
    std::vector<float> series(static_cast<std::size_t>(n_train + n_test));
    std::normal_distribution<float> noise(0.0f, 0.1f);
    for (std::size_t t = 0; t < series.size(); ++t)
      series[t] = static_cast<float>(std::sin(2 * M_PI * static_cast<double>(t) / 25.0)) +
                  noise(default_generator());
    // Held-out windows: every 10th start in the last 300 points.
    std::vector<std::int64_t> test_starts;
    for (std::int64_t s = n_train; s + kWindow + 1 <= n_train + n_test; s += 10)
      test_starts.push_back(s);
    const auto [test_x, test_y] = windows(series, test_starts);

    nn::LSTM lstm(1, hidden);
    nn::Linear head(hidden, 1);
    std::vector<Tensor> params = lstm.parameters();
    for (const Tensor& p : head.parameters()) params.push_back(p);
    optim::Adam opt(params, optim::AdamOptions(lr));
    auto predict = [&](const Tensor& x) { return head(lstm(x)); };  // [T, N, 1]
    auto test_loss = [&] {
      no_grad guard;
      return mse_loss(predict(test_x), test_y).item();
    };

    const double initial = test_loss();
    std::printf("lstm_sine: hidden %lld, %d steps, batch %lld x %lld steps, Adam lr %g, seed %lu\n",
                static_cast<long long>(hidden), steps, static_cast<long long>(kBatch),
                static_cast<long long>(kWindow), lr, seed);
    std::printf("step %5d  held-out loss %.5f\n", 0, initial);
    std::uniform_int_distribution<std::int64_t> start(0, n_train - kWindow - 1);
    for (int step = 1; step <= steps; ++step) {
      std::vector<std::int64_t> starts(static_cast<std::size_t>(kBatch));
      for (auto& s : starts) s = start(default_generator());
      const auto [x, y] = windows(series, starts);
      opt.zero_grad();
      Tensor loss = mse_loss(predict(x), y);
      loss.backward();
      opt.step();
      if (step % print_every == 0 || step == steps)
        std::printf("step %5d  train loss %.5f\n", step, loss.item());
      std::fflush(stdout);
    }
    std::printf("final loss %.6f (initial %.6f)\n", test_loss(), initial);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  return 0;
}
