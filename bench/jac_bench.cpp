// jacfwd vs jacrev on a map from 4 inputs to 1,000 outputs: forward mode needs one dual pass
// per input (4), reverse mode one backward per output (1,000), so jacfwd must win by a wide
// margin. f(x) = Σ_k exp(A ∘ x) ∘ x over the 4 axis, A a fixed [1000, 4] matrix, x [4]
// broadcast against it; J is [1000, 4].
//   build/bench/jac_bench [--runs N]
// Prints the median time of each over N runs (default 5) and the ratio jacrev / jacfwd, and
// exits 1 if jacfwd is not faster or the two Jacobians differ.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench_util.hpp"
#include "xgrad/xgrad.hpp"

using namespace xgrad;
using bench::median;
using bench::seconds;

int main(int argc, char** argv) {
  int runs = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: jac_bench [--runs N]\n");
      return 2;
    }
  }
  manual_seed(7);
  const Tensor A = rand({1000, 4}, float64);
  const Tensor x = tensor({0.3, -0.2, 0.5, 0.1}, float64);
  func::UnaryFn f = [&A](const Tensor& v) { return sum(exp(A * v) * v, 1); };

  Tensor jf, jr;
  std::vector<double> tf, tr;
  for (int r = 0; r < runs; ++r) {
    tf.push_back(seconds([&] { jf = func::jacfwd(f)(x); }));
    tr.push_back(seconds([&] { jr = func::jacrev(f)(x); }));
  }
  const double max_diff = max(abs(jf - jr)).item();
  const double fwd = median(tf), rev = median(tr);
  std::printf("jacobian [1000, 4] of f: R^4 -> R^1000, median of %d runs\n", runs);
  std::printf("  jacfwd (4 dual passes)      %9.3f ms\n", fwd * 1e3);
  std::printf("  jacrev (1000 backward)      %9.3f ms\n", rev * 1e3);
  std::printf("  jacrev / jacfwd             %9.1fx\n", rev / fwd);
  std::printf("  max |jacfwd - jacrev|       %9.3g\n", max_diff);
  if (!(max_diff < 1e-12) || !(fwd < rev)) {
    std::fprintf(stderr, "jac_bench: %s\n",
                 max_diff < 1e-12 ? "jacfwd is not faster than jacrev" : "the Jacobians differ");
    return 1;
  }
  return 0;
}
