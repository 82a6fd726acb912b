// Per-sample gradients of the main job's MLP (784-256-128-10, ReLU, cross-entropy), float32,
// for a batch of 64: func::vmap(func::grad(loss of one sample)) in one pass against 64 calls of
// func::grad, one per sample (what DP-SGD or influence functions need, and what a framework
// without vmap makes you write).
//   build/bench/vmap_bench [--runs N]
// Prints the median time of each over N runs (default 5) and the ratio loop / vmap, and exits 1
// if the two disagree by more than 1e-6 or vmap is not at least 5x faster (the goal).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "xgrad/xgrad.hpp"

using namespace xgrad;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class F>
double seconds(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: vmap_bench [--runs N]\n");
      return 2;
    }
  }
  manual_seed(3);
  nn::MLP model({784, 256, 128, 10});
  const auto named = model.named_parameters();
  std::vector<Tensor> params;
  for (const auto& [name, p] : named) params.push_back(p.detach());
  const std::size_t P = params.size();
  const std::int64_t B = 64;
  const Tensor x = rand({B, 784});
  Tensor y = empty({B}, int64);
  for (std::int64_t b = 0; b < B; ++b) y.data_ptr<std::int64_t>()[b] = (b * 3) % 10;

  // The loss of one sample x [784], label y [] as a function of the parameters.
  func::Fn loss_of_one = [&](const std::vector<Tensor>& a) {
    std::map<std::string, Tensor> m;
    for (std::size_t i = 0; i < P; ++i) m[named[i].first] = a[i];
    return cross_entropy(func::functional_call(model, m, unsqueeze(a[P], 0)),
                         unsqueeze(a[P + 1], 0));
  };
  std::vector<std::int64_t> argnums;
  for (std::size_t i = 0; i < P; ++i) argnums.push_back(static_cast<std::int64_t>(i));
  func::InDims dims(P, std::nullopt);
  dims.push_back(0);
  dims.push_back(0);
  std::vector<Tensor> args = params;
  args.push_back(x);
  args.push_back(y);
  const auto per_sample_grad = func::vmap(func::grad(loss_of_one, argnums), dims);
  const auto one_grad = func::grad(loss_of_one, argnums);

  std::vector<Tensor> by_vmap;
  std::vector<std::vector<Tensor>> by_loop(static_cast<std::size_t>(B));
  std::vector<double> tv, tl;
  for (int r = 0; r < runs; ++r) {
    tv.push_back(seconds([&] { by_vmap = per_sample_grad(args); }));
    tl.push_back(seconds([&] {
      for (std::int64_t b = 0; b < B; ++b) {
        std::vector<Tensor> a = params;
        a.push_back(select(x, 0, b));
        a.push_back(select(y, 0, b));
        by_loop[static_cast<std::size_t>(b)] = one_grad(a);
      }
    }));
  }
  double max_diff = 0;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::size_t i = 0; i < P; ++i)
      max_diff = std::max(max_diff, max(abs(select(by_vmap[i], 0, b) -
                                            by_loop[static_cast<std::size_t>(b)][i]))
                                        .item());
  const double v = median(tv), l = median(tl);
  std::printf("per-sample gradients, MLP 784-256-128-10, batch %lld, float32, median of %d runs\n",
              static_cast<long long>(B), runs);
  std::printf("  vmap(grad(loss))            %9.3f ms\n", v * 1e3);
  std::printf("  64 x grad(loss)             %9.3f ms\n", l * 1e3);
  std::printf("  loop / vmap                 %9.1fx (goal >= 5)\n", l / v);
  std::printf("  max |vmap - loop|           %9.3g\n", max_diff);
  if (!(max_diff <= 1e-6) || !(l / v >= 5.0)) {
    std::fprintf(stderr, "vmap_bench: %s\n",
                 max_diff <= 1e-6 ? "vmap is not 5x faster than the loop"
                                  : "per-sample gradients differ");
    return 1;
  }
  return 0;
}
