// Internal BLAS helpers: one row-major GEMM on raw pointers (cblas) for every kernel that
// multiplies matrices (matmul/linear in linalg.cpp, conv2d's im2col GEMMs in conv_kernels.cpp), and
// OpenBLAS's thread-count calls. Not installed.
//
// OpenBLAS is held to one thread (blas_threads_init): its own threads split a GEMM statically
// and spin while they wait, so on a machine where another process keeps a core busy a
// two-thread GEMM waits for its slower half (2.6x slower than one thread, measured; see
// docs/performance.md). xgrad splits large GEMMs itself instead (gemm_split), into blocks
// of rows or columns of C that the threads of parallel.hpp claim one at a time.
#pragma once

#include <cblas.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "detail/cpu.hpp"
#include "detail/parallel.hpp"
#include "xgrad/runtime.hpp"

extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}

namespace xgrad::detail {

/// Sets OpenBLAS to one thread, once per process, and returns the thread count it had before
/// (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS or the number of cores): the default of
/// get_num_threads(). Defined in runtime.cpp.
int blas_threads_init();

/// How gemm splits C[M,N] for its threads: `chunks` blocks of `size` rows of C (and of
/// op(A)), each at least 2·10^6 multiply-adds (so that every block stays on OpenBLAS's
/// large-matrix path and is worth a thread) and 32 rows, at most 8 blocks, sizes a multiple of
/// 16. Depends on the shape only; chunks = 1: one call. Rows only: OpenBLAS 0.3.21 gives the
/// same bits for a block of rows as for the whole product, but not always for a block of
/// columns (row-major columns are its column-major rows, blocked differently once K exceeds
/// its K block; tests/cpu_dispatch_test.cpp found it).
struct GemmSplit {
  std::int64_t chunks = 1, size = 0;
};

inline GemmSplit gemm_split(std::int64_t M, std::int64_t N, std::int64_t K) {
  GemmSplit s;
  s.size = M;
  const double mnk = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const auto want = static_cast<std::int64_t>(std::min({8.0, mnk / 2e6, M / 32.0}));
  if (want < 2) return s;
  s.size = ((M + want - 1) / want + 15) / 16 * 16;
  s.chunks = (M + s.size - 1) / s.size;
  return s;
}

/// The depth from which gemm splits a product with a small C in two halves of K (see gemm).
inline constexpr std::int64_t kDepthSplitMinK = 1024;

/// One cblas_sgemm / cblas_dgemm call (the arguments as gemm's).
template <class T>
void gemm_call(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const T* A,
               std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  const int m = static_cast<int>(M), n = static_cast<int>(N), k = static_cast<int>(K);
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, TA, TB, m, n, k, 1.0f, A, static_cast<int>(lda), B,
                static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
  } else {
    cblas_dgemm(CblasRowMajor, TA, TB, m, n, k, 1.0, A, static_cast<int>(lda), B,
                static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
  }
}

// Rows [lo, hi) of C = a ⊗ b, cached stores: one multiply per element, so the baseline and the
// AVX2 variant (chosen at run time, detail/cpu.hpp) give the same bits.
template <class T>
[[gnu::always_inline]] inline void outer_rows_body(std::int64_t lo, std::int64_t hi, std::int64_t N,
                                                   const T* a, std::int64_t sa,
                                                   const T* __restrict b, T* C, std::int64_t ldc) {
  for (std::int64_t i = lo; i < hi; ++i) {
    const T ai = a[i * sa];
    T* __restrict row = C + i * ldc;
    for (std::int64_t j = 0; j < N; ++j) row[j] = ai * b[j];
  }
}
template <class T>
void outer_rows_base(std::int64_t lo, std::int64_t hi, std::int64_t N, const T* a, std::int64_t sa,
                     const T* b, T* C, std::int64_t ldc) {
  outer_rows_body(lo, hi, N, a, sa, b, C, ldc);
}
template <class T>
XGRAD_TARGET_AVX2 void outer_rows_avx2(std::int64_t lo, std::int64_t hi, std::int64_t N, const T* a,
                                       std::int64_t sa, const T* b, T* C, std::int64_t ldc) {
  outer_rows_body(lo, hi, N, a, sa, b, C, ldc);
}

/// C[M,N] = a ⊗ b (C[i,j] = a[i·sa]·b[j]), rows lo..hi: a GEMM with K = 1 and beta = 0, which
/// OpenBLAS runs through its small-matrix kernel at a third of the memory bandwidth (the
/// per-sample weight gradients of vmap(grad(f)) are exactly such products: 50 MB for the main
/// job's MLP). One rounded multiply per element, as BLAS gives (alpha = 1); the cached-store
/// loop is dispatched at run time (outer_rows_avx2 or the baseline). `stream`: for outputs far
/// larger than the caches, float rows are written with non-temporal stores (SSE2, in every x86-64
/// build), which do not read the lines first: twice the write bandwidth, measured.
template <class T>
void outer_rows(std::int64_t lo, std::int64_t hi, std::int64_t N, const T* a, std::int64_t sa,
                const T* __restrict b, T* C, std::int64_t ldc, bool stream = false) {
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>) {
    if (stream) {
      for (std::int64_t i = lo; i < hi; ++i) {
        const float ai = a[i * sa];
        float* __restrict row = C + i * ldc;
        std::int64_t j = 0;
        for (; j < N && (reinterpret_cast<std::uintptr_t>(row + j) & 15) != 0; ++j)
          row[j] = ai * b[j];
        const __m128 av = _mm_set1_ps(ai);
        for (; j + 4 <= N; j += 4) _mm_stream_ps(row + j, _mm_mul_ps(av, _mm_loadu_ps(b + j)));
        for (; j < N; ++j) row[j] = ai * b[j];
      }
      _mm_sfence();  // the streamed stores are visible before the caller reads C
      return;
    }
  }
#endif
  (void)stream;
  use_avx2() ? outer_rows_avx2(lo, hi, N, a, sa, b, C, ldc)
             : outer_rows_base(lo, hi, N, a, sa, b, C, ldc);
}

/// C[i] = a[i] ⊗ b[i] for i < batch, C [batch, M, N] with rows ldc apart: a[i] starts at a + i·sa0
/// with row stride sa, b[i] (contiguous) at b + i·sb0. Blocks of ~64 K elements go to the threads
/// (parallel_run; each element is one product, so the thread count changes nothing); outputs of 4
/// MiB and more (beyond L2) are streamed (outer_rows).
template <class T>
void outer(std::int64_t batch, std::int64_t M, std::int64_t N, const T* a, std::int64_t sa0,
           std::int64_t sa, const T* b, std::int64_t sb0, T* C, std::int64_t ldc) {
  if (batch == 0 || M == 0 || N == 0) return;
  const std::int64_t rows = std::clamp<std::int64_t>((std::int64_t(1) << 16) / N, 1, M);
  const std::int64_t per = (M + rows - 1) / rows, chunks = batch * per;
  const int threads =
      chunks > 1 && batch * M * N >= (std::int64_t(1) << 17) ? get_num_threads() : 1;
  const bool stream = static_cast<std::size_t>(batch * M * N) * sizeof(T) >= (std::size_t(4) << 20);
  parallel_run(threads, chunks, [&](std::int64_t c) {
    const std::int64_t i = c / per, lo = (c % per) * rows, hi = std::min(M, lo + rows);
    outer_rows(lo, hi, N, a + i * sa0, sa, b + i * sb0, C + i * M * ldc, ldc, stream);
  });
}

/// C[M,N] = beta·C + op(A)[M,K]·op(B)[K,N], row-major, op = transpose when ta / tb: calls to
/// cblas_sgemm / cblas_dgemm, one per block of rows of gemm_split on get_num_threads() threads
/// (parallel_try_run; one call when the pool does not take the blocks: one thread, inside a
/// parallel region, or while the pool backs off on a busy machine). A block of rows gives
/// the bits of the whole product, so the result does not depend on the thread count
/// (tests/cpu_dispatch_test.cpp).
/// A deep product with a small C (K >= 1024 and >= 4·max(M, N), at least 4·10^6
/// multiply-adds: a weight gradient over many rows) is two products over the halves of K
/// instead, added (C = (beta·C + first) + second), on two threads when the pool takes them:
/// the same bits with any thread count, and no block packs op(B) twice.
/// K = 0 gives beta·C (BLAS leaves that case to the caller).
template <class T>
void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const T* A,
          std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  static const int blas_held = blas_threads_init();  // before any OpenBLAS call
  (void)blas_held;
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (std::int64_t i = 0; i < M; ++i) {
      T* row = C + i * ldc;
      if (beta == T(0)) {
        std::fill(row, row + N, T(0));
      } else {
        for (std::int64_t j = 0; j < N; ++j) row[j] *= beta;
      }
    }
    return;
  }
  if (K == 1 && beta == T(0) && (tb ? ldb == 1 : true)) {
    // An outer product: op(A) is a column (stride lda, or 1 when ta), op(B) a row.
    return outer(std::int64_t(1), M, N, A, 0, ta ? 1 : lda, B, 0, C, ldc);
  }
  if (K >= kDepthSplitMinK && K >= 4 * std::max(M, N) &&
      static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K) >= 4e6) {
    // A deep product with a small C (a weight gradient dW = dYᵀ·X over the batch's rows):
    // split by rows of C, every block would pack all of op(B) again (+30 % for the GPT's
    // [128..512, 128] x 2048 products, measured). Two halves of the depth instead, always (the
    // shape decides, not the thread count, so the bits do not depend on it): the first half
    // into C (with beta), the second into a per-thread buffer, then C += that buffer.
    const std::int64_t K0 = (K / 2 + 15) / 16 * 16;
    thread_local std::vector<T> part;
    part.resize(static_cast<std::size_t>(M * N));
    T* P = part.data();
    auto half = [&](std::int64_t c) {
      const std::int64_t k0 = c == 0 ? 0 : K0, k = c == 0 ? K0 : K - K0;
      const T* a = ta ? A + k0 * lda : A + k0;
      const T* b = tb ? B + k0 : B + k0 * ldb;
      if (c == 0)
        gemm_call(ta, tb, M, N, k, a, lda, b, ldb, beta, C, ldc);
      else
        gemm_call(ta, tb, M, N, k, a, lda, b, ldb, T(0), P, N);
    };
    const int threads = !in_parallel_region() ? get_num_threads() : 1;
    if (!(threads > 1 && parallel_try_run(threads, 2, half))) {
      half(0);
      half(1);
    }
    for (std::int64_t i = 0; i < M; ++i) {
      T* __restrict c = C + i * ldc;
      const T* __restrict p = P + i * N;
      for (std::int64_t j = 0; j < N; ++j) c[j] += p[j];
    }
    return;
  }
  const GemmSplit s = gemm_split(M, N, K);
  const int threads = s.chunks > 1 && !in_parallel_region() ? get_num_threads() : 1;
  // When the pool does not take the blocks (one thread, nested, or backing off on a busy
  // machine) one call does the whole product: run one after another, the blocks would each
  // pack op(B) again.
  const bool split =
      threads > 1 && parallel_try_run(threads, s.chunks, [&](std::int64_t c) {  // rows lo..
        const std::int64_t lo = c * s.size, rows = std::min(s.size, M - lo);
        gemm_call(ta, tb, rows, N, K, ta ? A + lo : A + lo * lda, lda, B, ldb, beta, C + lo * ldc,
                  ldc);
      });
  if (!split) gemm_call(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace xgrad::detail
