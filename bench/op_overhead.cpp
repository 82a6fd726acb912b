// Per-op overhead of xgrad on tiny tensors, where bookkeeping (graph nodes, shapes, storages,
// the backward engine) costs more than the arithmetic: a chain of 5 ops on a float32 tensor
// of n elements that requires grad,
//   y = x * x;  y = y + x;  y = tanh(y);  y = y * x;  s = sum(y)
// timed three ways: forward with grad (the graph is recorded), forward + backward
// (s.backward(), x.grad dropped each iteration) and forward under no_grad. Each time is the
// median over rounds of the mean over many iterations, divided by the 5 ops. Its twin,
// bench/torch_op_overhead.cpp, runs the same chain in libtorch; bench/run --model opcost runs
// both interleaved and prints the ratios.
//   build/bench/op_overhead [--rounds R] [--iters K] [--n N[,N...]]   (default 7, 20000, 1,16)
// Prints one line per size:
//   RESULT impl=xgrad n=16 fwd_ns=... fwd_bwd_ns=... nograd_ns=...   (ns per op)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "xgrad/xgrad.hpp"

using namespace xgrad;

namespace {

constexpr int kOps = 5;

Tensor chain(const Tensor& x) {
  Tensor y = x * x;
  y = y + x;
  y = tanh(y);
  y = y * x;
  return sum(y);
}

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
      std::fprintf(stderr, "usage: op_overhead [--rounds R] [--iters K] [--n N[,N...]]\n");
      return 2;
    }
  }
  for (const std::int64_t n : sizes) {
    Tensor x = full({n}, 0.5, TensorOptions().requires_grad());
    std::vector<double> fwd, fwd_bwd, nograd;
    double sink = 0;
    for (int w = 0; w < 1000; ++w) {  // warm-up: caches and pools reach their steady state
      chain(x).backward();
      x.zero_grad();
    }
    for (int r = 0; r < rounds; ++r) {
      fwd.push_back(bench::seconds([&] {
        for (int k = 0; k < iters; ++k) sink += chain(x).numel();
      }));
      fwd_bwd.push_back(bench::seconds([&] {
        for (int k = 0; k < iters; ++k) {
          chain(x).backward();
          x.zero_grad();
        }
      }));
      nograd.push_back(bench::seconds([&] {
        no_grad guard;
        for (int k = 0; k < iters; ++k) sink += chain(x).numel();
      }));
    }
    const double scale = 1e9 / (static_cast<double>(iters) * kOps);
    std::printf("RESULT impl=xgrad n=%lld fwd_ns=%.1f fwd_bwd_ns=%.1f nograd_ns=%.1f\n",
                static_cast<long long>(n), bench::median(fwd) * scale,
                bench::median(fwd_bwd) * scale, bench::median(nograd) * scale);
    if (sink < 0) std::printf("%g\n", sink);
  }
  return 0;
}
