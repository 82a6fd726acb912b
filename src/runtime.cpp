#include "xgrad/runtime.hpp"

#include <atomic>

#include "detail/blas.hpp"
#include "xgrad/error.hpp"

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace xgrad {

bool set_flush_denormal(bool on) {
#if defined(__SSE__)
  constexpr unsigned ftz = 0x8000;  // flush-to-zero
  constexpr unsigned daz = 0x0040;  // denormals-are-zero
  unsigned csr = _mm_getcsr();
  csr = on ? (csr | ftz | daz) : (csr & ~(ftz | daz));
  _mm_setcsr(csr);
  return true;
#else
  (void)on;
  return false;
#endif
}

namespace {
std::atomic<int> g_threads{0};        // 0: not set, the count OpenBLAS had at start-up
std::atomic<int> g_batch_threads{0};  // 0: follow get_num_threads()
}  // namespace

namespace detail {

int blas_threads_init() {
  // A function-local static: runs once, whichever thread comes first.
  static const int initial = [] {
    const int n = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return n > 0 ? n : 1;
  }();
  return initial;
}

}  // namespace detail

void set_num_threads(int n) {
  check(n >= 1, "set_num_threads: need at least one thread, got ", n);
  detail::blas_threads_init();
  g_threads.store(n, std::memory_order_relaxed);
}

int get_num_threads() {
  const int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : detail::blas_threads_init();
}

void set_num_batch_threads(int n) {
  check(n >= 0, "set_num_batch_threads: need n >= 1 (or 0 to follow get_num_threads()), got ", n);
  g_batch_threads.store(n, std::memory_order_relaxed);
}

int get_num_batch_threads() {
  const int n = g_batch_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : get_num_threads();
}

}  // namespace xgrad
