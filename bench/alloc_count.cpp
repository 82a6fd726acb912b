// Heap allocations per steady-state training step of the main job's MLP (nn::MLP 784-256-128-10,
// ReLU, cross-entropy, Adam lr 1e-3, batch 64, random data): every malloc, calloc, realloc,
// aligned_alloc, posix_memalign and memalign of the process (operator new included: libstdc++'s
// calls malloc) is counted by the wrappers below, which forward to glibc's __libc_* functions.
// A few warm-up steps first (Adam's state, the allocator's caches), then S counted steps.
//   build/bench/alloc_count [--steps S] [--warmup W] [--threads T]   (default 20, 5, 1)
// Prints
//   RESULT allocs_per_step=... bytes_per_step=... frees_per_step=...
// and, per phase of the step (forward, zero_grad, backward, step), the allocations per step.
// Issue 14's goal: 0 per step. --trace prints the call stack of each allocation of one step
// to stderr (for finding what still allocates; symbols need -rdynamic or addr2line).
#include <execinfo.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "xgrad/xgrad.hpp"

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace {
// --trace: the call stack of every allocation of one steady-state step, to stderr.
std::atomic<bool> g_trace{false};
thread_local bool t_in_trace = false;
void trace() {
  if (!g_trace.load(std::memory_order_relaxed) || t_in_trace) return;
  t_in_trace = true;
  void* frames[12];
  const int n = backtrace(frames, 12);
  static const char sep[] = "----\n";
  (void)!write(2, sep, sizeof sep - 1);
  backtrace_symbols_fd(frames + 2, n - 2, 2);  // without count() and malloc
  t_in_trace = false;
}
std::atomic<long long> g_allocs{0};
std::atomic<long long> g_bytes{0};
std::atomic<long long> g_frees{0};
void count(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(static_cast<long long>(n), std::memory_order_relaxed);
  trace();
}
}  // namespace

extern "C" {
void* malloc(std::size_t n) {
  count(n);
  return __libc_malloc(n);
}
void* calloc(std::size_t k, std::size_t n) {
  count(k * n);
  return __libc_calloc(k, n);
}
void* realloc(void* p, std::size_t n) {
  count(n);
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
  count(n);
  return __libc_memalign(a, n);
}
void* memalign(std::size_t a, std::size_t n) {
  count(n);
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, std::size_t a, std::size_t n) {
  count(n);
  void* p = __libc_memalign(a, n);
  if (p == nullptr) return 12;  // ENOMEM
  *out = p;
  return 0;
}
void free(void* p) {
  if (p != nullptr) g_frees.fetch_add(1, std::memory_order_relaxed);
  __libc_free(p);
}
}

using namespace xgrad;

int main(int argc, char** argv) {
  int steps = 20, warmup = 5, threads = 1;
  bool tracing = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
      steps = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--warmup") == 0 && i + 1 < argc) {
      warmup = std::max(0, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--trace") == 0) {
      tracing = true;
    } else {
      std::fprintf(stderr, "usage: alloc_count [--steps S] [--warmup W] [--threads T] [--trace]\n");
      return 2;
    }
  }
  set_num_threads(threads);
  manual_seed(42);
  nn::MLP model({784, 256, 128, 10});
  optim::Adam opt(model.parameters(), optim::AdamOptions(1e-3));
  const std::int64_t batch = 64;
  std::vector<Tensor> xs, ys;
  for (int b = 0; b < 4; ++b) {
    xs.push_back(rand({batch, 784}));
    ys.push_back(argmax(rand({batch, 10}), 1));
  }
  long long phase[4] = {0, 0, 0, 0};  // forward, zero_grad, backward, step
  auto train_step = [&](int k) {
    long long a0 = g_allocs.load();
    Tensor loss = cross_entropy(model(xs[k % 4]), ys[k % 4]);
    long long a1 = g_allocs.load();
    opt.zero_grad();
    long long a2 = g_allocs.load();
    loss.backward();
    long long a3 = g_allocs.load();
    opt.step();
    long long a4 = g_allocs.load();
    phase[0] += a1 - a0;
    phase[1] += a2 - a1;
    phase[2] += a3 - a2;
    phase[3] += a4 - a3;
  };
  for (int k = 0; k < warmup; ++k) train_step(k);
  for (long long& p : phase) p = 0;
  if (tracing) {  // one step with every allocation's call stack, then the counted ones
    void* warm[2];
    backtrace(warm, 2);  // loads libgcc's unwinder now, not inside the traced step
    g_trace = true;
    train_step(warmup);
    g_trace = false;
    for (long long& p : phase) p = 0;
  }
  const long long a0 = g_allocs.load(), b0 = g_bytes.load(), f0 = g_frees.load();
  for (int k = 0; k < steps; ++k) train_step(warmup + k);
  const double s = steps;
  std::printf("RESULT allocs_per_step=%.2f bytes_per_step=%.0f frees_per_step=%.2f\n",
              (g_allocs.load() - a0) / s, (g_bytes.load() - b0) / s, (g_frees.load() - f0) / s);
  std::printf("per phase: forward %.2f, zero_grad %.2f, backward %.2f, step %.2f allocations\n",
              phase[0] / s, phase[1] / s, phase[2] / s, phase[3] / s);
  return 0;
}
