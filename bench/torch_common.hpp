// torch_common.hpp - everything the libtorch reference benchmarks share but their model.
//
// torch_mlp.cpp and torch_cnn.cpp each define a torch::nn module and call
// bench::run_benchmark<Model>(argc, argv, "name"). The run trains the model on
// Fashion-MNIST with Adam (lr 1e-3; --optim sgd|rmsprop and --lr change it) and cross-entropy
// loss, then evaluates test accuracy, optionally times inference over the test set
// (--infer-passes N; --max-steps 0 skips training), and prints one machine-readable line:
//
//   RESULT impl=libtorch model=<name> samples_per_s=... wall_s=...
//          peak_rss_mib=... test_acc=... final_loss=... infer_samples_per_s=...
//
// (all on one line).  Timing covers only the training loop: per-step batch
// assembly (gather + uint8 -> float32 scaling), forward, backward and the
// optimizer step.  Reading the gzip'd IDX files and the final evaluation are
// excluded.
//
// Self-contained on purpose: its own small IDX reader (zlib) and argument parser, so that
// the benchmarks build without the xgrad core.
//
// Threads: --threads N sets libtorch's intra-op and inter-op pools and the
// OpenBLAS pool to N; --blas-threads M overrides the OpenBLAS pool alone (see
// configure_threads and bench/README.md for why that matters on Debian).
// glibc malloc thresholds are pinned at start-up (see tune_malloc).
#pragma once

#include <torch/torch.h>

#include "fashion_mnist.hpp"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>
#include <sys/resource.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

// ---------------------------------------------------------------------------
// Command-line options
// ---------------------------------------------------------------------------

struct Options {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  int epochs = 1;
  int batch_size = 64;
  int threads = 0;        // 0 = leave libtorch's default
  int blas_threads = -1;  // OpenBLAS pool size; < 0 = same as threads
  std::uint64_t seed = 42;
  long long max_steps = -1;    // < 0 = no cap
  bool malloc_tuning = true;   // pin glibc malloc thresholds (see tune_malloc)
  std::string optim = "adam";  // adam | sgd | rmsprop (torch's defaults but the lr)
  double lr = 1e-3;
  bool flush_denormal = false;  // at::globalContext().setFlushDenormal
  int infer_passes = 0;         // > 0: time this many passes of inference over the test set
};

[[noreturn]] inline void usage(const char* argv0, int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: %s [--data DIR] [--epochs N] [--batch-size N]\n"
               "          [--threads N] [--blas-threads N] [--seed N]\n"
               "          [--max-steps N] [--malloc-tuning 0|1]\n"
               "          [--optim adam|sgd|rmsprop] [--lr X] [--flush-denormal 0|1]\n"
               "          [--infer-passes N]\n",
               argv0);
  std::exit(code);
}

inline long long parse_int(const char* flag, const char* text) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') {
    std::fprintf(stderr, "error: %s expects an integer, got '%s'\n", flag, text);
    std::exit(2);
  }
  return v;
}

inline Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") usage(argv[0], 0);
    if (i + 1 >= argc) {
      std::fprintf(stderr, "error: unknown flag or missing value: %s\n", a.c_str());
      usage(argv[0], 2);
    }
    const char* v = argv[++i];
    if (a == "--data") {
      o.data_dir = v;
    } else if (a == "--epochs") {
      o.epochs = static_cast<int>(parse_int("--epochs", v));
    } else if (a == "--batch-size") {
      o.batch_size = static_cast<int>(parse_int("--batch-size", v));
    } else if (a == "--threads") {
      o.threads = static_cast<int>(parse_int("--threads", v));
    } else if (a == "--blas-threads") {
      o.blas_threads = static_cast<int>(parse_int("--blas-threads", v));
    } else if (a == "--seed") {
      o.seed = static_cast<std::uint64_t>(parse_int("--seed", v));
    } else if (a == "--malloc-tuning") {
      o.malloc_tuning = parse_int("--malloc-tuning", v) != 0;
    } else if (a == "--max-steps") {
      o.max_steps = parse_int("--max-steps", v);
    } else if (a == "--optim") {
      o.optim = v;
    } else if (a == "--lr") {
      char* end = nullptr;
      o.lr = std::strtod(v, &end);
      if (end == v || *end != '\0' || !(o.lr >= 0)) {
        std::fprintf(stderr, "error: --lr expects a number >= 0, got '%s'\n", v);
        std::exit(2);
      }
    } else if (a == "--flush-denormal") {
      o.flush_denormal = parse_int("--flush-denormal", v) != 0;
    } else if (a == "--infer-passes") {
      o.infer_passes = static_cast<int>(parse_int("--infer-passes", v));
    } else {
      std::fprintf(stderr, "error: unknown flag: %s\n", a.c_str());
      usage(argv[0], 2);
    }
  }
  if (o.optim != "adam" && o.optim != "sgd" && o.optim != "rmsprop") {
    std::fprintf(stderr, "error: --optim must be adam, sgd or rmsprop, got '%s'\n",
                 o.optim.c_str());
    std::exit(2);
  }
  if (o.epochs < 1 || o.batch_size < 1 || o.threads < 0 || o.infer_passes < 0) {
    std::fprintf(stderr,
                 "error: --epochs and --batch-size must be >= 1, "
                 "--threads and --infer-passes >= 0\n");
    std::exit(2);
  }
  return o;
}

// Builds a batch from the rows `idx[begin, end)`: gathers the uint8 pixels
// into a contiguous buffer, then converts to float32 in [0, 1].
inline void make_batch(const Dataset& ds, const std::vector<std::int64_t>& idx, std::size_t begin,
                       std::size_t end, torch::Tensor& x, torch::Tensor& y) {
  const auto b = static_cast<std::int64_t>(end - begin);
  torch::Tensor xu8 = torch::empty({b, ds.features}, torch::kUInt8);
  torch::Tensor yi = torch::empty({b}, torch::kInt64);
  std::uint8_t* xp = xu8.data_ptr<std::uint8_t>();
  std::int64_t* yp = yi.data_ptr<std::int64_t>();
  for (std::int64_t r = 0; r < b; ++r) {
    const std::int64_t src = idx[begin + static_cast<std::size_t>(r)];
    std::memcpy(xp + r * ds.features, ds.pixels.data() + src * ds.features,
                static_cast<std::size_t>(ds.features));
    yp[r] = ds.labels[static_cast<std::size_t>(src)];
  }
  x = xu8.to(torch::kFloat32).div_(255.0f);
  y = yi;
}

// ---------------------------------------------------------------------------
// Threading and measurement helpers
// ---------------------------------------------------------------------------

// Sets libtorch's intra-op (OpenMP) and inter-op pools to `n` threads and the
// OpenBLAS pool to `blas_n` threads (0 / negative = leave as is).
//
// Debian's libtorch is built with BLAS_INFO=generic, so every GEMM goes to the
// system libblas.so.3 (OpenBLAS, pthread flavour by default).  That pool is
// separate from libtorch's OpenMP pool and torch::set_num_threads does not
// reach it, so we call openblas_set_num_threads, looked up at run time so that
// there is no link-time dependency on OpenBLAS.  Returns the BLAS thread count
// that was applied, or -1 if OpenBLAS was not found / not changed.
inline int configure_threads(int n, int blas_n) {
  if (n > 0) {
    torch::set_num_threads(n);
    try {
      // Only allowed once and before any inter-op work has started.
      at::set_num_interop_threads(n);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "note: set_num_interop_threads failed: %s\n", e.what());
    }
  }
  if (blas_n <= 0) return -1;
  using SetThreads = void (*)(int);
  void* sym = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
  if (sym == nullptr) return -1;
  reinterpret_cast<SetThreads>(sym)(blas_n);
  return blas_n;
}

// Pins glibc malloc's mmap and trim thresholds.
//
// libtorch's CPU allocator has no cache: every tensor is a fresh
// posix_memalign/free.  With glibc's *initial* settings every block above
// 128 KiB (a 64x784 float batch, the 784x256 weight gradient, Adam's
// temporaries, ...) is a separate mmap/munmap, and each step page-faults all of
// that memory in again; in our measurements this cost ~40% of the throughput.
// glibc raises the thresholds on its own as soon as a large mmapped block is
// freed (which many programs do early, e.g. while loading data), so whether the
// slow path is hit depends on incidental allocation history.
// To make the reference deterministic we set the values glibc's dynamic rule
// would converge to: mmap threshold 32 MiB (its DEFAULT_MMAP_THRESHOLD_MAX)
// and trim threshold twice that.  --malloc-tuning 0 disables this.
inline void tune_malloc() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

inline double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: KiB
}

// Fraction of correctly classified test images (batched, no autograd).
template <class Model>
double evaluate(Model& model, const Dataset& test) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<std::int64_t> order(static_cast<std::size_t>(test.n));
  std::iota(order.begin(), order.end(), 0);
  constexpr std::size_t kEvalBatch = 1000;
  std::int64_t correct = 0;
  torch::Tensor x, y;
  for (std::size_t b = 0; b < order.size(); b += kEvalBatch) {
    const std::size_t e = std::min(order.size(), b + kEvalBatch);
    make_batch(test, order, b, e, x, y);
    torch::Tensor pred = model->forward(x).argmax(1);
    correct += pred.eq(y).sum().item<std::int64_t>();
  }
  model->train();
  return static_cast<double>(correct) / static_cast<double>(test.n);
}

// Inference speed over the whole test set: the images are converted to one float tensor
// [N, 784] once, outside the timed loop; each pass runs the model under NoGradGuard on batches
// of 1,000 rows (views), takes the argmax and counts the correct ones, as evaluate() does.
// One untimed warm-up pass, then `passes` timed ones; returns the median pass's samples/s.
template <class Model>
double inference_samples_per_s(Model& model, const Dataset& test, int passes) {
  torch::NoGradGuard no_grad;
  model->eval();
  torch::Tensor xu8 = torch::from_blob(const_cast<std::uint8_t*>(test.pixels.data()),
                                       {test.n, test.features}, torch::kUInt8);
  const torch::Tensor x = xu8.to(torch::kFloat32).div_(255.0f);
  const torch::Tensor y =
      torch::from_blob(const_cast<std::uint8_t*>(test.labels.data()), {test.n}, torch::kUInt8)
          .to(torch::kInt64);
  constexpr std::int64_t kEvalBatch = 1000;
  std::vector<double> secs;
  std::int64_t correct = 0;
  for (int p = 0; p <= passes; ++p) {
    const auto t0 = std::chrono::steady_clock::now();
    correct = 0;
    for (std::int64_t b = 0; b < test.n; b += kEvalBatch) {
      const std::int64_t len = std::min(kEvalBatch, test.n - b);
      torch::Tensor pred = model->forward(x.narrow(0, b, len)).argmax(1);
      correct += pred.eq(y.narrow(0, b, len)).sum().item<std::int64_t>();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (p > 0) secs.push_back(s);  // pass 0 warms up
  }
  model->train();
  std::sort(secs.begin(), secs.end());
  std::fprintf(stderr, "inference: %d passes, %lld correct per pass\n", passes,
               static_cast<long long>(correct));
  return static_cast<double>(test.n) / secs[secs.size() / 2];
}

// The whole benchmark: parse the flags, load the data, train `Model` for the given epochs,
// evaluate, print the RESULT line for `model_name`. Returns the process exit code.
template <class Model>
int run_benchmark(int argc, char** argv, const char* model_name) {
  const Options opt = parse_args(argc, argv);
  if (opt.malloc_tuning) tune_malloc();
  const int blas_threads =
      configure_threads(opt.threads, opt.blas_threads >= 0 ? opt.blas_threads : opt.threads);
  torch::manual_seed(opt.seed);  // parameter init
  if (opt.flush_denormal) at::globalContext().setFlushDenormal(true);

  Dataset train, test;
  try {
    train = load_split(opt.data_dir, "train");
    test = load_split(opt.data_dir, "t10k");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr,
               "loaded %lld train / %lld test images; threads=%d "
               "(interop %d, openblas %s), batch=%d, epochs=%d\n",
               static_cast<long long>(train.n), static_cast<long long>(test.n),
               at::get_num_threads(), at::get_num_interop_threads(),
               blas_threads > 0 ? std::to_string(blas_threads).c_str() : "default", opt.batch_size,
               opt.epochs);

  Model model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (opt.optim == "sgd")
    optimizer =
        std::make_unique<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(opt.lr));
  else if (opt.optim == "rmsprop")
    optimizer = std::make_unique<torch::optim::RMSprop>(model->parameters(),
                                                        torch::optim::RMSpropOptions(opt.lr));
  else
    optimizer = std::make_unique<torch::optim::Adam>(model->parameters(),
                                                     torch::optim::AdamOptions(opt.lr));

  std::mt19937_64 rng(opt.seed);  // shuffling
  std::vector<std::int64_t> order(static_cast<std::size_t>(train.n));
  const auto bs = static_cast<std::size_t>(opt.batch_size);

  long long steps = 0;
  long long samples = 0;
  double final_loss = 0.0;  // sample-weighted mean loss of the last epoch
  bool capped = false;
  torch::Tensor x, y;

  const auto t0 = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < opt.epochs && !capped; ++epoch) {
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);

    double loss_sum = 0.0;
    long long epoch_samples = 0;
    // The last batch may be smaller than batch_size; it is still trained on.
    for (std::size_t b = 0; b < order.size(); b += bs) {
      if (opt.max_steps >= 0 && steps >= opt.max_steps) {
        capped = true;
        break;
      }
      const std::size_t e = std::min(order.size(), b + bs);
      make_batch(train, order, b, e, x, y);

      optimizer->zero_grad();
      torch::Tensor loss = torch::nn::functional::cross_entropy(model(x), y);
      loss.backward();
      optimizer->step();

      const auto n = static_cast<long long>(e - b);
      loss_sum += loss.item<double>() * static_cast<double>(n);
      epoch_samples += n;
      samples += n;
      ++steps;
    }
    if (epoch_samples == 0) break;  // --max-steps was reached at an epoch boundary
    final_loss = loss_sum / static_cast<double>(epoch_samples);
    std::fprintf(stderr, "epoch %d: mean loss %.4f over %lld samples\n", epoch + 1, final_loss,
                 epoch_samples);
  }
  const auto t1 = std::chrono::steady_clock::now();
  const double wall_s = std::chrono::duration<double>(t1 - t0).count();

  const double test_acc = evaluate(model, test);
  const double sps = wall_s > 0.0 ? static_cast<double>(samples) / wall_s : 0.0;
  const double infer_sps =
      opt.infer_passes > 0 ? inference_samples_per_s(model, test, opt.infer_passes) : 0.0;

  std::printf(
      "RESULT impl=libtorch model=%s samples_per_s=%.1f wall_s=%.3f "
      "peak_rss_mib=%.1f test_acc=%.4f final_loss=%.4f infer_samples_per_s=%.1f\n",
      model_name, sps, wall_s, peak_rss_mib(), test_acc, final_loss, infer_sps);
  return 0;
}

}  // namespace bench
