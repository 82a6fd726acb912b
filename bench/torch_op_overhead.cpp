// libtorch twin of bench/op_overhead.cpp: the same chain of 5 ops on a float32 tensor of n
// elements that requires grad,
//   y = x * x;  y = y + x;  y = tanh(y);  y = y * x;  s = sum(y)
// timed forward with grad, forward + backward (x.grad dropped each iteration) and forward
// under torch::NoGradGuard; medians over rounds, ns per op. One intra-op thread (elementwise
// ops on 16 elements never split anyway).
//   build/bench/torch_op_overhead [--rounds R] [--iters K] [--n N[,N...]]
// Prints one line per size:
//   RESULT impl=libtorch n=16 fwd_ns=... fwd_bwd_ns=... nograd_ns=...
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

constexpr int kOps = 5;

torch::Tensor chain(const torch::Tensor& x) {
  torch::Tensor y = x * x;
  y = y + x;
  y = torch::tanh(y);
  y = y * x;
  return y.sum();
}

using bench::median;
using bench::seconds;

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7;
  int iters = 20000;
  std::vector<std::int64_t> sizes{1, 16};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
      iters = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
      sizes.clear();
      std::string list = argv[++i];
      for (std::size_t p = 0; p < list.size();) {
        std::size_t q = list.find(',', p);
        if (q == std::string::npos) q = list.size();
        sizes.push_back(std::atoll(list.substr(p, q - p).c_str()));
        p = q + 1;
      }
    } else {
      std::fprintf(stderr, "usage: torch_op_overhead [--rounds R] [--iters K] [--n N[,N...]]\n");
      return 2;
    }
  }
  torch::set_num_threads(1);
  for (const std::int64_t n : sizes) {
    torch::Tensor x = torch::full({n}, 0.5, torch::kFloat32).requires_grad_(true);
    std::vector<double> fwd, fwd_bwd, nograd;
    double sink = 0;
    for (int w = 0; w < 1000; ++w) {
      chain(x).backward();
      x.mutable_grad().reset();
    }
    for (int r = 0; r < rounds; ++r) {
      fwd.push_back(seconds([&] {
        for (int k = 0; k < iters; ++k) sink += chain(x).numel();
      }));
      fwd_bwd.push_back(seconds([&] {
        for (int k = 0; k < iters; ++k) {
          chain(x).backward();
          x.mutable_grad().reset();
        }
      }));
      nograd.push_back(seconds([&] {
        torch::NoGradGuard guard;
        for (int k = 0; k < iters; ++k) sink += chain(x).numel();
      }));
    }
    const double scale = 1e9 / (static_cast<double>(iters) * kOps);
    std::printf("RESULT impl=libtorch n=%lld fwd_ns=%.1f fwd_bwd_ns=%.1f nograd_ns=%.1f\n",
                static_cast<long long>(n), median(fwd) * scale, median(fwd_bwd) * scale,
                median(nograd) * scale);
    if (sink < 0) std::printf("%g\n", sink);
  }
  return 0;
}
