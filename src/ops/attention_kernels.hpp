// The fused attention kernels (FlashAttention on the CPU, Dao et al. 2022): tiled forward with
// an online softmax, and the backward that recomputes the tiles. Shared by attention.cpp.
// Not installed.
#pragma once

#include <cstdint>
#include <vector>

namespace xgrad::detail {

/// Where the B matrices of one operand are: matrix b starts `offset[b]` elements after the
/// operand's pointer, its rows are `ld` elements apart (ld >= its columns) and its columns
/// adjacent. Lets the kernels read q, k, v and the incoming gradient straight from the views
/// multi-head attention makes (heads interleaved in the rows of one projection, [B, L, H, D]
/// seen as [B, H, L, D]) and write out, dq, dk, dv in the same order, with no copy.
struct MatrixLayout {
  std::vector<std::int64_t> offset;
  std::int64_t ld = 0;
  /// B contiguous [rows, cols] matrices.
  static MatrixLayout dense(std::int64_t B, std::int64_t rows, std::int64_t cols) {
    MatrixLayout m;
    m.ld = cols;
    m.offset.resize(static_cast<std::size_t>(B));
    for (std::int64_t b = 0; b < B; ++b) m.offset[static_cast<std::size_t>(b)] = b * rows * cols;
    return m;
  }
};

/// One attention problem over B flattened batch entries: q [B, L, E], k [B, S, E],
/// v [B, S, Ev], out and dout [B, L, Ev], dq [B, L, E], dk [B, S, E], dv [B, S, Ev], each laid
/// out as its MatrixLayout says; lse [B, L] and dmask [B, L, S] contiguous.
struct AttentionProblem {
  std::int64_t B = 1, L = 0, S = 0, E = 0, Ev = 0;
  double scale = 1.0;
  bool causal = false;
  double dropout_p = 0.0;
  std::uint64_t seed = 0;
  // The mask, broadcast: entry (b, i, j) at mask[mask_offset[b] + i·mask_si + j·mask_sj];
  // bool (keep where true) or of the kernel's float type (added to the scores); null if none.
  const void* mask = nullptr;
  bool mask_is_bool = false;
  std::vector<std::int64_t> mask_offset;
  std::int64_t mask_si = 0, mask_sj = 0;
  MatrixLayout q, k, v, out, dout, dq, dk, dv;
};

/// True when entry (b, i, j) survives dropout for `seed` (a counter-based hash, so forward,
/// backward and attention_dropout_mask agree without storing a mask).
bool attention_keep(std::uint64_t seed, std::uint64_t flat_index, double dropout_p);

template <class T>
void attention_forward_kernel(const AttentionProblem& p, const T* q, const T* k, const T* v, T* out,
                              T* lse);

/// dq [B, L, E], dk [B, S, E], dv [B, S, Ev]; dmask, when not null, [B, L, S] receives the
/// gradient of the masked scores (the float mask's gradient before summing to its shape).
template <class T>
void attention_backward_kernel(const AttentionProblem& p, const T* q, const T* k, const T* v,
                               const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv,
                               T* dmask);

}  // namespace xgrad::detail
