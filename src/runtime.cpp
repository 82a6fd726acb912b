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

void set_num_threads(int n) {
  check(n >= 1, "set_num_threads: need at least one thread, got ", n);
  openblas_set_num_threads(n);
}

int get_num_threads() {
  return openblas_get_num_threads();
}

namespace {
std::atomic<int> g_batch_threads{0};  // 0: follow get_num_threads()
}  // namespace

void set_num_batch_threads(int n) {
  check(n >= 0, "set_num_batch_threads: need n >= 1 (or 0 to follow get_num_threads()), got ", n);
  g_batch_threads.store(n, std::memory_order_relaxed);
}

int get_num_batch_threads() {
  const int n = g_batch_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : get_num_threads();
}

}  // namespace xgrad
