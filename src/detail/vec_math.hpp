// exp and erf that a vectorised loop can call: for float, glibc's expf and erff declared with
// GCC's simd attribute, so that when the vectoriser turns a loop into SIMD code it calls
// libmvec's vector versions (_ZGVdN8v_expf, _ZGVdN8v_erff, ... 4, 8 or 16 lanes per call;
// erff's since glibc 2.35), linked through libm.so, whose linker script adds libmvec as needed.
// They agree with the scalar functions within 2 ulp (erff: 1.75 ms against 22 ms for 2^20
// values, 2 ulp at most over [-6, 6], measured on an AVX2 build). With another compiler or C
// library, and for double, they are std::exp and std::erf. Not installed.
#pragma once

#include <cmath>
#include <type_traits>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define XGRAD_HAVE_LIBMVEC 1
extern "C" float xgrad_libmvec_expf(float) __asm__("expf")
    __attribute__((simd("notinbranch"), const, nothrow));
extern "C" float xgrad_libmvec_erff(float) __asm__("erff")
    __attribute__((simd("notinbranch"), const, nothrow));
extern "C" float xgrad_libmvec_tanhf(float) __asm__("tanhf")
    __attribute__((simd("notinbranch"), const, nothrow));
#endif

namespace xgrad::detail {

/// e^x (float: libmvec's expf inside vectorised loops).
template <class T>
inline T vexp(T x) {
#ifdef XGRAD_HAVE_LIBMVEC
  if constexpr (std::is_same_v<T, float>) return xgrad_libmvec_expf(x);
#endif
  return std::exp(x);
}

/// erf(x) (float: libmvec's erff inside vectorised loops).
template <class T>
inline T verf(T x) {
#ifdef XGRAD_HAVE_LIBMVEC
  if constexpr (std::is_same_v<T, float>) return xgrad_libmvec_erff(x);
#endif
  return std::erf(x);
}

/// tanh(x) (float: libmvec's tanhf inside vectorised loops, since glibc 2.35). Within 2 ulp of
/// glibc's scalar tanhf over all floats (tests/ops/vec_tanh_test.cpp: every float from 1e-30
/// to 10 and every denormal, both signs, checked against std::tanh; ±0 and denormals stay x,
/// ±inf give ±1, NaN stays NaN). Not bit-identical across ISA variants or positions: the
/// SSE2 and AVX2 variants of a dispatched loop call libmvec's 4- and 8-lane versions, and a
/// loop's scalar remainder (and a 1-element tensor) calls the scalar tanhf.
template <class T>
inline T vtanh(T x) {
#ifdef XGRAD_HAVE_LIBMVEC
  if constexpr (std::is_same_v<T, float>) return xgrad_libmvec_tanhf(x);
#endif
  return std::tanh(x);
}

}  // namespace xgrad::detail
