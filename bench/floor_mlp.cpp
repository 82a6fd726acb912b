// floor_mlp: the hand-written floor for xgrad-train's MLP step (issue 14). The same work as
// `xgrad-train --model mlp --optim adam --batch-size 64` — a 784-256-128-10 ReLU MLP on
// Fashion-MNIST, cross-entropy, Adam lr 1e-3 (torch's update), batch 64, one shuffled epoch of
// 938 steps (the last one of 32 samples) — written with no framework at all: six cblas_sgemm
// calls per step (three forward, three backward; no input gradient), and one fused loop for
// each of the rest (batch gather + uint8 -> float, bias + ReLU, softmax + cross-entropy + its
// gradient, bias gradients, ReLU masks, one Adam loop over all parameters), all buffers
// allocated once, flush-to-zero and denormals-are-zero on. No xgrad.
//
//   build/bench/floor_mlp [--data DIR] [--threads T] [--seed S] [--epochs N]
//                         [--infer-passes N] [--torch-adam]
//
// --torch-adam computes Adam's update with torch 1.13's operations and roundings, as xgrad
// does to match torch.optim bit for bit: the bias correction divides by sqrt(bc2) instead of
// multiplying by its inverse, a second division per element (the floor's own update is one
// square root and one division), and -ffp-contract=fast cannot fuse more than torch's fmas
// because they are written out.
//
// --infer-passes N > 0 times inference instead, the floor of `xgrad_infer --model mlp` and
// `torch_mlp --infer-passes N`: the 10,000 test images converted to float once, outside the
// timed loop, then per pass the forward above (three cblas_sgemm calls, two fused bias + ReLU
// loops) on batches of 1,000 rows and an argmax per row. One untimed warm-up pass; prints the
// median pass as `RESULT impl=floor model=mlp infer_samples_per_s=<float> correct=<count>`.
//
// --threads sets OpenBLAS's pool (openblas_set_num_threads, looked up at run time); the fused
// loops run on one thread. Prints one line, in the format of the libtorch twins:
//
//   RESULT impl=floor model=mlp samples_per_s=<float> wall_s=<float> test_acc=<float>
//          final_loss=<float>
//
// wall_s times the training loop only (batch assembly, forward, backward, Adam), as the twins'
// does. test_acc is there to show that the floor trains (about 0.84 after one epoch).
#include <cblas.h>
#include <dlfcn.h>
#include <xmmintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "fashion_mnist.hpp"

namespace {

constexpr int kIn = 784, kH1 = 256, kH2 = 128, kOut = 10;

// The parameters and Adam's moments live in one flat buffer each, so that Adam is one loop.
// Layout: W1 [256, 784], b1 [256], W2 [128, 256], b2 [128], W3 [10, 128], b3 [10] (torch's).
struct Layout {
  static constexpr std::size_t w1 = 0, b1 = w1 + kH1 * kIn, w2 = b1 + kH1, b2 = w2 + kH2 * kH1,
                               w3 = b2 + kH2, b3 = w3 + kOut * kH2, total = b3 + kOut;
};

// torch.nn.Linear's default init: weights and bias uniform in +-1/sqrt(fan_in).
void init_linear(float* w, float* b, int out, int in, std::mt19937& rng) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(in));
  std::uniform_real_distribution<float> u(-bound, bound);
  for (int i = 0; i < out * in; ++i) w[i] = u(rng);
  for (int i = 0; i < out; ++i) b[i] = u(rng);
}

// y[r, :] = relu(y[r, :] + b) for r < rows.
void bias_relu(float* __restrict y, const float* __restrict b, int rows, int cols) {
  for (int r = 0; r < rows; ++r) {
    float* yr = y + static_cast<std::size_t>(r) * cols;
    for (int c = 0; c < cols; ++c) yr[c] = std::max(yr[c] + b[c], 0.0f);
  }
}

// Masks the incoming gradient g by the ReLU output h (g = 0 where h == 0) and sums the masked
// gradient's rows into db (the bias gradient).
void relu_backward_bias(float* __restrict g, const float* __restrict h, float* __restrict db,
                        int rows, int cols) {
  std::memset(db, 0, sizeof(float) * cols);
  for (int r = 0; r < rows; ++r) {
    float* gr = g + static_cast<std::size_t>(r) * cols;
    const float* hr = h + static_cast<std::size_t>(r) * cols;
    for (int c = 0; c < cols; ++c) {
      gr[c] = hr[c] > 0.0f ? gr[c] : 0.0f;
      db[c] += gr[c];
    }
  }
}

struct Net {
  std::vector<float> p, g, m, v;  // parameters, gradients, Adam's first and second moments
  std::vector<float> x, h1, h2, logits, d3, d2, d1;  // activations and their gradients
  std::vector<int> y;
  int step = 0;

  explicit Net(int batch)
      : p(Layout::total),
        g(Layout::total),
        m(Layout::total),
        v(Layout::total),
        x(static_cast<std::size_t>(batch) * kIn),
        h1(static_cast<std::size_t>(batch) * kH1),
        h2(static_cast<std::size_t>(batch) * kH2),
        logits(static_cast<std::size_t>(batch) * kOut),
        d3(static_cast<std::size_t>(batch) * kOut),
        d2(static_cast<std::size_t>(batch) * kH2),
        d1(static_cast<std::size_t>(batch) * kH1),
        y(static_cast<std::size_t>(batch)) {}

  // logits = fc3(relu(fc2(relu(fc1(xin))))) for the first `b` rows of xin (x by default).
  void forward(int b, const float* xin = nullptr) {
    const float* P = p.data();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, kH1, kIn, 1.0f,
                xin != nullptr ? xin : x.data(), kIn, P + Layout::w1, kIn, 0.0f, h1.data(), kH1);
    bias_relu(h1.data(), P + Layout::b1, b, kH1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, kH2, kH1, 1.0f, h1.data(), kH1,
                P + Layout::w2, kH1, 0.0f, h2.data(), kH2);
    bias_relu(h2.data(), P + Layout::b2, b, kH2);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, kOut, kH2, 1.0f, h2.data(), kH2,
                P + Layout::w3, kH2, 0.0f, logits.data(), kOut);
    for (int r = 0; r < b; ++r)
      for (int c = 0; c < kOut; ++c) logits[r * kOut + c] += P[Layout::b3 + c];
  }

  // Mean cross-entropy of the logits against y; writes its gradient (softmax - onehot) / b
  // into d3 and the bias gradient of fc3 into g.
  double loss_and_grad(int b) {
    double loss = 0;
    float* db3 = g.data() + Layout::b3;
    std::memset(db3, 0, sizeof(float) * kOut);
    const float inv_b = 1.0f / static_cast<float>(b);
    for (int r = 0; r < b; ++r) {
      const float* l = logits.data() + r * kOut;
      float* d = d3.data() + r * kOut;
      float mx = l[0];
      for (int c = 1; c < kOut; ++c) mx = std::max(mx, l[c]);
      float sum = 0;
      for (int c = 0; c < kOut; ++c) sum += (d[c] = std::exp(l[c] - mx));
      const float inv = 1.0f / sum;
      loss += std::log(sum) + mx - l[y[r]];
      for (int c = 0; c < kOut; ++c) {
        d[c] = (d[c] * inv - (c == y[r] ? 1.0f : 0.0f)) * inv_b;
        db3[c] += d[c];
      }
    }
    return loss / b;
  }

  // torch.nn.Linear's default init of the three layers, in order.
  void init(std::mt19937& rng) {
    float* P = p.data();
    init_linear(P + Layout::w1, P + Layout::b1, kH1, kIn, rng);
    init_linear(P + Layout::w2, P + Layout::b2, kH2, kH1, rng);
    init_linear(P + Layout::w3, P + Layout::b3, kOut, kH2, rng);
  }

  // Weight gradients (dW = dY^T X) and the gradients of the hidden activations.
  void backward(int b) {
    float* G = g.data();
    const float* P = p.data();
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kOut, kH2, b, 1.0f, d3.data(), kOut,
                h2.data(), kH2, 0.0f, G + Layout::w3, kH2);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, kH2, kOut, 1.0f, d3.data(), kOut,
                P + Layout::w3, kH2, 0.0f, d2.data(), kH2);
    relu_backward_bias(d2.data(), h2.data(), G + Layout::b2, b, kH2);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kH2, kH1, b, 1.0f, d2.data(), kH2,
                h1.data(), kH1, 0.0f, G + Layout::w2, kH1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, kH1, kH2, 1.0f, d2.data(), kH2,
                P + Layout::w2, kH1, 0.0f, d1.data(), kH1);
    relu_backward_bias(d1.data(), h1.data(), G + Layout::b1, b, kH1);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kH1, kIn, b, 1.0f, d1.data(), kH1,
                x.data(), kIn, 0.0f, G + Layout::w1, kIn);
  }

  // torch.optim.Adam's update (lr 1e-3, betas 0.9/0.999, eps 1e-8, no weight decay) in one
  // loop over every parameter.
  void adam() {
    constexpr float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    ++step;
    const float bc1 = 1.0f - std::pow(beta1, static_cast<float>(step));
    const float bc2 = 1.0f - std::pow(beta2, static_cast<float>(step));
    const float step_size = lr / bc1, inv_sqrt_bc2 = 1.0f / std::sqrt(bc2);
    float* __restrict P = p.data();
    const float* __restrict G = g.data();
    float* __restrict M = m.data();
    float* __restrict V = v.data();
    if (torch_adam) {
      // torch 1.13's operations and roundings, as xgrad's Adam computes them: the bias
      // correction divides by sqrt(bc2) (a second division per element) instead of
      // multiplying by its inverse, and no multiply-add is fused except torch's own.
      const float bc2s = std::sqrt(bc2), neg_step = -step_size;
      for (std::size_t i = 0; i < Layout::total; ++i) {
        const float m = std::fma(1.0f - beta1, G[i], M[i] * beta1);
        const float v = std::fma((1.0f - beta2) * G[i], G[i], V[i] * beta2);
        M[i] = m;
        V[i] = v;
        P[i] = P[i] + (neg_step * m) / (std::sqrt(v) / bc2s + eps);
      }
      return;
    }
    for (std::size_t i = 0; i < Layout::total; ++i) {
      M[i] = beta1 * M[i] + (1.0f - beta1) * G[i];
      V[i] = beta2 * V[i] + (1.0f - beta2) * G[i] * G[i];
      P[i] -= step_size * M[i] / (std::sqrt(V[i]) * inv_sqrt_bc2 + eps);
    }
  }
  bool torch_adam = false;
};

// Gathers rows idx[begin, begin+b) of the uint8 images into x as float in [0, 1].
// Rows are fetched 4 ahead, as xgrad's MnistDataset::get_batch does (the rows of a shuffled
// batch lie anywhere in 47 MB of images).
void make_batch(const bench::Dataset& ds, const std::vector<std::int64_t>& idx, std::size_t begin,
                int b, Net& net) {
  const auto prefetch_row = [&](int r) {
    const std::uint8_t* row = ds.pixels.data() + idx[begin + static_cast<std::size_t>(r)] * kIn;
    for (int off = 0; off < kIn; off += 64) {
#if defined(__x86_64__) || defined(__i386__)
      asm volatile("prefetcht0 %0" : : "m"(row[off]));  // GCC drops a loop of __builtin_prefetch
#else
      __builtin_prefetch(row + off);
#endif
    }
  };
  for (int r = 0; r < std::min(b, 4); ++r) prefetch_row(r);
  for (int r = 0; r < b; ++r) {
    if (r + 4 < b) prefetch_row(r + 4);
    const std::int64_t src = idx[begin + static_cast<std::size_t>(r)];
    const std::uint8_t* in = ds.pixels.data() + src * kIn;
    float* out = net.x.data() + static_cast<std::size_t>(r) * kIn;
    for (int c = 0; c < kIn; ++c) out[c] = static_cast<float>(in[c]) * (1.0f / 255.0f);
    net.y[static_cast<std::size_t>(r)] = ds.labels[static_cast<std::size_t>(src)];
  }
}

void set_blas_threads(int n) {
  using SetThreads = void (*)(int);
  if (void* sym = dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))
    reinterpret_cast<SetThreads>(sym)(n);
}

// The inference floor (see the header): median samples/s of `passes` timed passes.
int infer(const bench::Dataset& test, int passes, unsigned seed) {
  constexpr int kBatch = 1000;
  Net net(kBatch);
  std::mt19937 init_rng(seed);
  net.init(init_rng);
  const std::size_t n = static_cast<std::size_t>(test.n);
  std::vector<float> images(n * kIn);
  for (std::size_t i = 0; i < images.size(); ++i)
    images[i] = static_cast<float>(test.pixels[i]) * (1.0f / 255.0f);
  long long correct = 0;
  std::vector<double> rates;
  for (int pass = 0; pass <= passes; ++pass) {  // pass 0 is the warm-up
    correct = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t b = 0; b < n; b += kBatch) {
      const int rows = static_cast<int>(std::min<std::size_t>(kBatch, n - b));
      net.forward(rows, images.data() + b * kIn);
      for (int r = 0; r < rows; ++r) {
        const float* l = net.logits.data() + r * kOut;
        correct +=
            std::max_element(l, l + kOut) - l == test.labels[b + static_cast<std::size_t>(r)];
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (pass > 0) rates.push_back(static_cast<double>(n) / s);
  }
  std::sort(rates.begin(), rates.end());
  std::printf("RESULT impl=floor model=mlp infer_samples_per_s=%.1f correct=%lld\n",
              rates[rates.size() / 2], correct);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "/usr/share/datasets/fashion-mnist";
  int threads = 1, epochs = 1, infer_passes = 0;
  bool torch_adam = false;
  unsigned seed = 42;
  for (int i = 1; i < argc; ++i) {
    const bool has = i + 1 < argc;
    if (std::strcmp(argv[i], "--data") == 0 && has) {
      data = argv[++i];
    } else if (std::strcmp(argv[i], "--threads") == 0 && has) {
      threads = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--seed") == 0 && has) {
      seed = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else if (std::strcmp(argv[i], "--epochs") == 0 && has) {
      epochs = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--torch-adam") == 0) {
      torch_adam = true;
    } else if (std::strcmp(argv[i], "--infer-passes") == 0 && has) {
      infer_passes = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: floor_mlp [--data DIR] [--threads T] [--seed S] [--epochs N] "
                   "[--infer-passes N] [--torch-adam]\n");
      return 2;
    }
  }
  if (threads < 1 || epochs < 1 || infer_passes < 0) {
    std::fprintf(stderr, "floor_mlp: --threads and --epochs must be >= 1, --infer-passes >= 0\n");
    return 2;
  }
  set_blas_threads(threads);
  _mm_setcsr(_mm_getcsr() | 0x8040);  // flush-to-zero and denormals-are-zero

  bench::Dataset train, test;
  try {
    train = bench::load_split(data, "train");
    test = bench::load_split(data, "t10k");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "floor_mlp: %s\n", e.what());
    return 1;
  }
  if (infer_passes > 0) return infer(test, infer_passes, seed);
  constexpr int kBatch = 64;
  Net net(kBatch);
  net.torch_adam = torch_adam;
  std::mt19937 init_rng(seed);
  net.init(init_rng);

  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> order(static_cast<std::size_t>(train.n));
  long long samples = 0;
  double final_loss = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < epochs; ++epoch) {
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    double loss_sum = 0;
    for (std::size_t b = 0; b < order.size(); b += kBatch) {
      const int n = static_cast<int>(std::min<std::size_t>(kBatch, order.size() - b));
      make_batch(train, order, b, n, net);
      net.forward(n);
      loss_sum += net.loss_and_grad(n) * n;
      net.backward(n);
      net.adam();
      samples += n;
    }
    final_loss = loss_sum / static_cast<double>(order.size());
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Test accuracy, in batches of 64 through the same buffers.
  std::vector<std::int64_t> all(static_cast<std::size_t>(test.n));
  std::iota(all.begin(), all.end(), 0);
  long long correct = 0;
  for (std::size_t b = 0; b < all.size(); b += kBatch) {
    const int n = static_cast<int>(std::min<std::size_t>(kBatch, all.size() - b));
    make_batch(test, all, b, n, net);
    net.forward(n);
    for (int r = 0; r < n; ++r) {
      const float* l = net.logits.data() + r * kOut;
      correct += std::max_element(l, l + kOut) - l == net.y[static_cast<std::size_t>(r)];
    }
  }
  std::printf(
      "RESULT impl=floor model=mlp samples_per_s=%.1f wall_s=%.3f test_acc=%.4f "
      "final_loss=%.4f\n",
      static_cast<double>(samples) / wall, wall, static_cast<double>(correct) / test.n, final_loss);
  return 0;
}
