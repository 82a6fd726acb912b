// Internal BLAS helpers: one row-major GEMM on raw pointers (cblas) for every kernel that
// multiplies matrices (matmul/linear in linalg.cpp, conv2d's im2col GEMMs in conv_kernels.cpp), and
// OpenBLAS's thread-count calls. Not installed.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}

namespace xgrad::detail {

/// C[M,N] = beta·C + op(A)[M,K]·op(B)[K,N], row-major, op = transpose when ta / tb; one call
/// to cblas_sgemm / cblas_dgemm. K = 0 gives beta·C (BLAS leaves that case to the caller).
template <class T>
void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const T* A,
          std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
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

/// While alive, OpenBLAS runs every call on the calling thread: threads of the batch pool each
/// call GEMM on their own images, and must not queue up for OpenBLAS's own (busy) threads.
class BlasSingleThreaded {
 public:
  BlasSingleThreaded() : saved_(openblas_get_num_threads()) {
    if (saved_ > 1) openblas_set_num_threads(1);
  }
  ~BlasSingleThreaded() {
    if (saved_ > 1) openblas_set_num_threads(saved_);
  }
  BlasSingleThreaded(const BlasSingleThreaded&) = delete;
  BlasSingleThreaded& operator=(const BlasSingleThreaded&) = delete;

 private:
  int saved_;
};

}  // namespace xgrad::detail
