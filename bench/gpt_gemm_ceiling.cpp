// gpt_gemm_ceiling.cpp - the GEMMs of one training step of `xgrad-train --model gpt`, alone:
// every matrix product of the forward and the backward at its shape, on one OpenBLAS thread,
// timed as one step. B·T / (the step's GEMM time) is the tokens/s those GEMMs allow, the
// ceiling that issue 20's must-show 4 measures xgrad's one-thread speed against (as
// bench/run's MLP rows measure against the MLP's floor).
//
//   gpt_gemm_ceiling [--batch-size 32] [--block-size 64] [--n-layer 4] [--n-head 4]
//                    [--n-embd 128] [--vocab 114] [--reps 30] [--blas-threads 1]
//
// The products, with N = B·T rows, C wide, H heads of D = C/H, vocabulary V:
//  - each Linear (in -> out; per block in_proj C -> 3C, out_proj C -> C, linear1 C -> 4C,
//    linear2 4C -> C; then the head C -> V): forward Y = X·Wᵀ [N, out]; backward
//    dX = dY·W [N, in] and dW = dYᵀ·X [out, in] (dX of the first block too: the embeddings
//    learn);
//  - each head's attention (B·H of them per block, [T, D] each): forward S = Q·Kᵀ and O = P·V,
//    backward dV = Pᵀ·dO, dP = dO·Vᵀ, dQ = dS·K and dK = dSᵀ·Q (the full T×T products, as
//    torch's; xgrad's fused kernel recomputes S in its backward, a seventh product not counted
//    here).
// Every product has its own operands (as the step's activations are distinct memory). Biases,
// softmax, LayerNorm, GELU, the optimizer and everything else are left out: this is the time
// the step cannot go under with these GEMMs.
//
// Prints one line: RESULT impl=gemm model=gpt tokens_per_s=... step_ms=... linear_ms=...
// attention_ms=... gflops=...
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" void openblas_set_num_threads(int num_threads);

namespace {

struct Gemm {
  bool ta, tb;
  int M, N, K;
  int count;  // how many independent products of this shape (the heads)
  std::vector<float> a, b, c;
  bool attention;
};

long long parse_int(const char* flag, const char* text) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < 1) {
    std::fprintf(stderr, "error: %s expects a positive integer, got '%s'\n", flag, text);
    std::exit(2);
  }
  return v;
}

void add(std::vector<Gemm>& g, bool ta, bool tb, int M, int N, int K, int count, bool attention,
         std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Gemm x{ta, tb, M, N, K, count, {}, {}, {}, attention};
  x.a.resize(static_cast<std::size_t>(M) * K * count);
  x.b.resize(static_cast<std::size_t>(K) * N * count);
  x.c.resize(static_cast<std::size_t>(M) * N * count);
  for (float& v : x.a) v = u(rng);
  for (float& v : x.b) v = u(rng);
  g.push_back(std::move(x));
}

// C[M,N] = op(A)·op(B), row-major, as xgrad's detail::gemm calls cblas.
double run(const Gemm& g) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t sa = static_cast<std::size_t>(g.M) * g.K,
                    sb = static_cast<std::size_t>(g.K) * g.N,
                    sc = static_cast<std::size_t>(g.M) * g.N;
  const int lda = g.ta ? g.M : g.K, ldb = g.tb ? g.K : g.N;
  for (int i = 0; i < g.count; ++i)
    cblas_sgemm(CblasRowMajor, g.ta ? CblasTrans : CblasNoTrans, g.tb ? CblasTrans : CblasNoTrans,
                g.M, g.N, g.K, 1.0f, g.a.data() + i * sa, lda, g.b.data() + i * sb, ldb, 0.0f,
                const_cast<float*>(g.c.data()) + i * sc, g.N);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  long long B = 32, T = 64, layers = 4, H = 4, C = 128, V = 114, reps = 30, blas_threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::printf(
          "usage: %s [--batch-size N] [--block-size N] [--n-layer N] [--n-head N] [--n-embd N]\n"
          "          [--vocab N] [--reps N] [--blas-threads N]\n",
          argv[0]);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "error: unknown flag or missing value: %s\n", a.c_str());
      return 2;
    }
    const long long v = parse_int(a.c_str(), argv[++i]);
    if (a == "--batch-size")
      B = v;
    else if (a == "--block-size")
      T = v;
    else if (a == "--n-layer")
      layers = v;
    else if (a == "--n-head")
      H = v;
    else if (a == "--n-embd")
      C = v;
    else if (a == "--vocab")
      V = v;
    else if (a == "--reps")
      reps = v;
    else if (a == "--blas-threads")
      blas_threads = v;
    else {
      std::fprintf(stderr, "error: unknown flag: %s\n", a.c_str());
      return 2;
    }
  }
  if (C % H != 0) {
    std::fprintf(stderr, "error: --n-embd %lld is not divisible by --n-head %lld\n", C, H);
    return 2;
  }
  openblas_set_num_threads(static_cast<int>(blas_threads));
  const int N = static_cast<int>(B * T), c = static_cast<int>(C), t = static_cast<int>(T),
            d = static_cast<int>(C / H), bh = static_cast<int>(B * H);
  std::mt19937 rng(42);
  std::vector<Gemm> fwd, bwd;
  auto linear = [&](int in, int out, std::vector<Gemm>& f, std::vector<Gemm>& b) {
    add(f, false, true, N, out, in, 1, false, rng);   // Y = X·Wᵀ
    add(b, false, false, N, in, out, 1, false, rng);  // dX = dY·W
    add(b, true, false, out, in, N, 1, false, rng);   // dW = dYᵀ·X
  };
  std::vector<std::vector<Gemm>> bwd_layers;
  for (long long l = 0; l < layers; ++l) {
    std::vector<Gemm> b;
    linear(c, 3 * c, fwd, b);
    add(fwd, false, true, t, t, d, bh, true, rng);   // S = Q·Kᵀ
    add(fwd, false, false, t, d, t, bh, true, rng);  // O = P·V
    add(b, true, false, t, d, t, bh, true, rng);     // dV = Pᵀ·dO
    add(b, false, true, t, t, d, bh, true, rng);     // dP = dO·Vᵀ
    add(b, false, false, t, d, t, bh, true, rng);    // dQ = dS·K
    add(b, true, false, t, d, t, bh, true, rng);     // dK = dSᵀ·Q
    linear(c, c, fwd, b);
    linear(c, 4 * c, fwd, b);
    linear(4 * c, c, fwd, b);
    bwd_layers.push_back(std::move(b));
  }
  {
    std::vector<Gemm> b;
    linear(c, static_cast<int>(V), fwd, b);
    bwd_layers.push_back(std::move(b));
  }
  for (auto it = bwd_layers.rbegin(); it != bwd_layers.rend(); ++it)
    for (auto& g : *it) bwd.push_back(std::move(g));

  std::vector<double> steps, lin, att;
  double flops = 0;
  for (const auto* list : {&fwd, &bwd})
    for (const Gemm& g : *list) flops += 2.0 * g.M * g.N * g.K * g.count;
  for (long long r = 0; r < reps + 3; ++r) {
    double total = 0, l = 0, a = 0;
    for (const auto* list : {&fwd, &bwd})
      for (const Gemm& g : *list) {
        const double s = run(g);
        total += s;
        (g.attention ? a : l) += s;
      }
    if (r < 3) continue;  // warm-up
    steps.push_back(total);
    lin.push_back(l);
    att.push_back(a);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  };
  const double s = median(steps);
  std::printf(
      "RESULT impl=gemm model=gpt blas_threads=%lld tokens_per_s=%.1f step_ms=%.3f "
      "linear_ms=%.3f attention_ms=%.3f gflops=%.2f\n",
      blas_threads, static_cast<double>(N) / s, s * 1e3, median(lin) * 1e3, median(att) * 1e3,
      flops / s / 1e9);
  return 0;
}
