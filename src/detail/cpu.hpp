// Run-time kernel dispatch: which instruction set the hot kernels use, chosen once at
// start-up. Not installed.
//
// A kernel is written once, as an always-inline template, and instantiated twice: as is
// (the build's baseline, x86-64 SSE2 unless -march says more) and inside a wrapper compiled
// with XGRAD_TARGET_AVX2 (AVX2 + FMA, whatever the build's -march). The call site picks the
// wrapper when detail::use_avx2() says so, a predictable branch per call (not per element).
// Both variants round identically: the library is compiled with -ffp-contract=off, so the only
// fused multiply-adds are the explicit std::fma calls, which are exact in both (an instruction
// in the AVX2 variant, libm's correctly rounded fma in the baseline). The optimizer parity
// tests run on both variants (tests/CMakeLists.txt sets XGRAD_CPU_CAPABILITY=default for a
// second run).
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define XGRAD_HAVE_AVX2_DISPATCH 1
#define XGRAD_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define XGRAD_TARGET_AVX2
#endif

namespace xgrad::detail {

/// The instruction sets kernels are compiled for, in increasing order.
enum class Isa { baseline, avx2 };

/// The instruction set chosen at start-up: the best this CPU supports, capped by the
/// environment variable XGRAD_CPU_CAPABILITY ("default" or "avx2", as ATen's
/// ATEN_CPU_CAPABILITY). Never changes afterwards.
Isa isa();

/// True when the AVX2 + FMA variants of the kernels are to be used.
inline bool use_avx2() {
#if defined(XGRAD_HAVE_AVX2_DISPATCH)
  static const bool on = isa() == Isa::avx2;
  return on;
#else
  return false;
#endif
}

}  // namespace xgrad::detail
