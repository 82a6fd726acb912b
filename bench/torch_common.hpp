// torch_common.hpp - everything the libtorch reference benchmarks share but their model.
//
// torch_mlp.cpp and torch_cnn.cpp each define a torch::nn module and call
// bench::run_benchmark<Model>(argc, argv, "name"). The run trains the model on
// Fashion-MNIST with Adam (lr 1e-3) and cross-entropy loss, then evaluates test
// accuracy, and prints one machine-readable line:
//
//   RESULT impl=libtorch model=<name> samples_per_s=... wall_s=...
//          peak_rss_mib=... test_acc=... final_loss=...
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
  long long max_steps = -1;   // < 0 = no cap
  bool malloc_tuning = true;  // pin glibc malloc thresholds (see tune_malloc)
};

[[noreturn]] inline void usage(const char* argv0, int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: %s [--data DIR] [--epochs N] [--batch-size N]\n"
               "          [--threads N] [--blas-threads N] [--seed N]\n"
               "          [--max-steps N] [--malloc-tuning 0|1]\n",
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
    } else {
      std::fprintf(stderr, "error: unknown flag: %s\n", a.c_str());
      usage(argv[0], 2);
    }
  }
  if (o.epochs < 1 || o.batch_size < 1 || o.threads < 0) {
    std::fprintf(stderr,
                 "error: --epochs and --batch-size must be >= 1, "
                 "--threads >= 0\n");
    std::exit(2);
  }
  return o;
}

// ---------------------------------------------------------------------------
// IDX reader (gzip-compressed, as distributed for (Fashion-)MNIST)
// ---------------------------------------------------------------------------

// RAII wrapper for a zlib gzFile.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb")) {
    if (f_ == nullptr) throw std::runtime_error("cannot open " + path);
    gzbuffer(f_, 1 << 16);
  }
  ~GzReader() { gzclose(f_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads exactly `n` bytes or throws.
  void read_exact(void* dst, std::size_t n) {
    auto* p = static_cast<std::uint8_t*>(dst);
    while (n > 0) {
      // gzread takes an unsigned count; read in chunks of at most 1 GiB.
      const unsigned want = static_cast<unsigned>(std::min<std::size_t>(n, std::size_t{1} << 30));
      const int got = gzread(f_, p, want);
      if (got <= 0) {
        int err = 0;
        const char* msg = got < 0 ? gzerror(f_, &err) : "unexpected end of file";
        throw std::runtime_error(path_ + ": " + msg);
      }
      p += got;
      n -= static_cast<std::size_t>(got);
    }
  }

  // True if no decompressed bytes are left.
  bool at_eof() {
    std::uint8_t extra = 0;
    return gzread(f_, &extra, 1) == 0;
  }

 private:
  std::string path_;
  gzFile f_;
};

inline std::uint32_t be32(const std::uint8_t* b) {
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
         std::uint32_t{b[3]};
}

// An IDX file of unsigned bytes: dims plus the raw payload.
struct IdxU8 {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> data;
};

// Parses a gzip'd IDX file whose element type is uint8 (type code 0x08) and
// whose rank equals `expected_rank`.  The header is read first, so the payload
// is decompressed straight into a buffer of the final size (no extra copy).
inline IdxU8 load_idx_u8(const std::string& path, std::size_t expected_rank) {
  GzReader in(path);
  std::uint8_t magic[4];
  in.read_exact(magic, sizeof magic);
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08) {
    throw std::runtime_error(path + ": not a uint8 IDX file");
  }
  const std::size_t rank = magic[3];
  if (rank != expected_rank) throw std::runtime_error(path + ": unexpected IDX rank");

  IdxU8 idx;
  std::size_t count = 1;
  for (std::size_t d = 0; d < rank; ++d) {
    std::uint8_t dim[4];
    in.read_exact(dim, sizeof dim);
    idx.dims.push_back(be32(dim));
    count *= idx.dims.back();
  }
  idx.data.resize(count);
  in.read_exact(idx.data.data(), count);
  if (!in.at_eof()) throw std::runtime_error(path + ": trailing data after payload");
  return idx;
}

// A split of the data set, pixels kept as uint8 until a batch is built.
struct Dataset {
  std::int64_t n = 0;
  std::int64_t features = 0;         // 28 * 28
  std::vector<std::uint8_t> pixels;  // n * features
  std::vector<std::uint8_t> labels;  // n
};

inline Dataset load_split(const std::string& dir, const std::string& prefix) {
  IdxU8 img = load_idx_u8(dir + "/" + prefix + "-images-idx3-ubyte.gz", 3);
  IdxU8 lab = load_idx_u8(dir + "/" + prefix + "-labels-idx1-ubyte.gz", 1);
  if (img.dims[0] != lab.dims[0]) {
    throw std::runtime_error(prefix + ": image/label count mismatch");
  }
  Dataset ds;
  ds.n = img.dims[0];
  ds.features = std::int64_t{img.dims[1]} * img.dims[2];
  ds.pixels = std::move(img.data);
  ds.labels = std::move(lab.data);
  return ds;
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

// The whole benchmark: parse the flags, load the data, train `Model` for the given epochs,
// evaluate, print the RESULT line for `model_name`. Returns the process exit code.
template <class Model>
int run_benchmark(int argc, char** argv, const char* model_name) {
  const Options opt = parse_args(argc, argv);
  if (opt.malloc_tuning) tune_malloc();
  const int blas_threads =
      configure_threads(opt.threads, opt.blas_threads >= 0 ? opt.blas_threads : opt.threads);
  torch::manual_seed(opt.seed);  // parameter init

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
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3));

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

      optimizer.zero_grad();
      torch::Tensor loss = torch::nn::functional::cross_entropy(model(x), y);
      loss.backward();
      optimizer.step();

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

  std::printf(
      "RESULT impl=libtorch model=%s samples_per_s=%.1f wall_s=%.3f "
      "peak_rss_mib=%.1f test_acc=%.4f final_loss=%.4f\n",
      model_name, sps, wall_s, peak_rss_mib(), test_acc, final_loss);
  return 0;
}

}  // namespace bench
