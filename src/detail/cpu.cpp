#include "detail/cpu.hpp"

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "xgrad/runtime.hpp"

namespace xgrad {

namespace detail {

namespace {

Isa detect() {
  Isa best = Isa::baseline;
#if defined(XGRAD_HAVE_AVX2_DISPATCH)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
#endif
  const char* cap = std::getenv("XGRAD_CPU_CAPABILITY");
  if (cap == nullptr || *cap == '\0') return best;
  if (std::strcmp(cap, "default") == 0) return Isa::baseline;
  if (std::strcmp(cap, "avx2") == 0) return best;  // a cap, never more than the CPU has
  // A typo must not silently change speed or results: say so once, keep the best.
  std::cerr << "xgrad: ignoring XGRAD_CPU_CAPABILITY=" << cap
            << " (expected 'default' or 'avx2')\n";
  return best;
}

}  // namespace

Isa isa() {
  static const Isa chosen = detect();
  return chosen;
}

}  // namespace detail

const char* cpu_capability() {
  return detail::isa() == detail::Isa::avx2 ? "avx2" : "default";
}

}  // namespace xgrad
