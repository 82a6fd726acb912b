#include "xgrad/runtime.hpp"

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

}  // namespace xgrad
