// Fused scaled dot-product attention on the CPU (FlashAttention, Dao et al. 2022, Algorithms 1
// and 2): queries in blocks of kBr rows, keys and values in tiles of kBc rows. Each tile's
// scores are one GEMM into a kBr×kBc buffer; the forward keeps per query row the running
// maximum m, the normaliser ℓ and the unnormalised output (rescaled by e^(m_old − m_new) when
// m grows), and ends with out = acc/ℓ and lse = m + log ℓ. The backward recomputes each tile's
// weights P = e^(s − lse) and accumulates dv += Pᵀ·dO, dS = P∘(dP − D) with
// D = rowsum(dO∘O), dq += dS·k, dk += dSᵀ·q (scaled). Memory per thread: a few tiles; no L×S
// array. Batch entries run in parallel on the batch pool (detail::parallel_for). Every operand
// is read and written through its MatrixLayout (row stride and per-entry offset), so the heads
// of a multi-head projection are used where they lie.
#include "ops/attention_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "detail/blas.hpp"
#include "detail/parallel.hpp"
#include "detail/vec_math.hpp"

namespace xgrad::detail {

namespace {

constexpr std::int64_t kBr = 64;   // query rows per block
constexpr std::int64_t kBc = 128;  // key rows per tile

std::uint64_t mix(std::uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The keys of query row i: [0, S), or [0, min(S, i + 1)) when causal.
std::int64_t key_end(const AttentionProblem& p, std::int64_t i) {
  return p.causal ? std::min(p.S, i + 1) : p.S;
}

// Turns one tile of raw scores q·kᵀ into the masked, scaled logits (−inf where masked out).
template <class T>
void mask_tile(const AttentionProblem& p, std::int64_t b, std::int64_t i0, std::int64_t br,
               std::int64_t j0, std::int64_t bc, T* s) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const T scale = static_cast<T>(p.scale);
  for (std::int64_t r = 0; r < br; ++r) {
    const std::int64_t i = i0 + r;
    T* row = s + r * bc;
    for (std::int64_t c = 0; c < bc; ++c) row[c] *= scale;
    if (p.mask != nullptr) {
      const std::int64_t base = p.mask_offset[static_cast<std::size_t>(b)] + i * p.mask_si;
      if (p.mask_is_bool) {
        const bool* m = static_cast<const bool*>(p.mask) + base;
        for (std::int64_t c = 0; c < bc; ++c)
          if (!m[(j0 + c) * p.mask_sj]) row[c] = ninf;
      } else {
        const T* m = static_cast<const T*>(p.mask) + base;
        for (std::int64_t c = 0; c < bc; ++c) row[c] += m[(j0 + c) * p.mask_sj];
      }
    }
    if (p.causal)
      for (std::int64_t c = std::max<std::int64_t>(0, i + 1 - j0); c < bc; ++c) row[c] = ninf;
  }
}

// The columns of a tile's row for query i that the causal mask leaves: [0, n), of bc;
// all bc without it. Past them the logits are −inf and the weights 0: the exponentials skip
// them (libmvec's vector exp takes a slow path for −inf lanes).
std::int64_t kept_columns(const AttentionProblem& p, std::int64_t i, std::int64_t j0,
                          std::int64_t bc) {
  return p.causal ? std::clamp<std::int64_t>(i + 1 - j0, 0, bc) : bc;
}

// The largest of row[0, n) and init, and the sum of row[0, n), in eight interleaved partials
// (the vectoriser keeps a single chain serial; the max is the same in any order, the sum
// differs by float rounding).
template <class T>
T row_max(const T* row, std::int64_t n, T init) {
  T m[8] = {init, init, init, init, init, init, init, init};
  std::int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int u = 0; u < 8; ++u) m[u] = std::max(m[u], row[c + u]);
  for (; c < n; ++c) m[0] = std::max(m[0], row[c]);
  for (int u = 1; u < 8; ++u) m[0] = std::max(m[0], m[u]);
  return m[0];
}
template <class T>
T row_sum(const T* row, std::int64_t n) {
  T s[8] = {};
  std::int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int u = 0; u < 8; ++u) s[u] += row[c + u];
  for (; c < n; ++c) s[0] += row[c];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

template <class T>
T dropout_factor(const AttentionProblem& p, std::int64_t b, std::int64_t i, std::int64_t j) {
  const auto flat = static_cast<std::uint64_t>((b * p.L + i) * p.S + j);
  return attention_keep(p.seed, flat, p.dropout_p) ? static_cast<T>(1.0 / (1.0 - p.dropout_p))
                                                   : T(0);
}

template <class T>
T* scratch(std::vector<T>& buf, std::size_t n) {
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

}  // namespace

bool attention_keep(std::uint64_t seed, std::uint64_t flat_index, double dropout_p) {
  const std::uint64_t h = mix(seed + 0x9e3779b97f4a7c15ULL * (flat_index + 1));
  const double u = static_cast<double>(h >> 11) * 0x1.0p-53;
  return u >= dropout_p;
}

template <class T>
void attention_forward_kernel(const AttentionProblem& p, const T* q, const T* k, const T* v, T* out,
                              T* lse) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const std::int64_t L = p.L, E = p.E, Ev = p.Ev;
  const std::int64_t qld = p.q.ld, kld = p.k.ld, vld = p.v.ld, old = p.out.ld;
  parallel_for(p.B, 1, [&](std::int64_t b0, std::int64_t b1, std::int64_t) {
    std::vector<T> sbuf(static_cast<std::size_t>(kBr * kBc)),
        acc(static_cast<std::size_t>(kBr * Ev));
    std::vector<T> m(static_cast<std::size_t>(kBr)), l(m), alpha(m);
    for (std::int64_t b = b0; b < b1; ++b) {
      const auto bu = static_cast<std::size_t>(b);
      const T* qb = q + p.q.offset[bu];
      const T* kb = k + p.k.offset[bu];
      const T* vb = v + p.v.offset[bu];
      T* ob = out + p.out.offset[bu];
      for (std::int64_t i0 = 0; i0 < L; i0 += kBr) {
        const std::int64_t br = std::min(kBr, L - i0);
        std::fill(m.begin(), m.end(), ninf);
        std::fill(l.begin(), l.end(), T(0));
        std::fill(acc.begin(), acc.end(), T(0));
        const std::int64_t jmax = key_end(p, i0 + br - 1);
        for (std::int64_t j0 = 0; j0 < jmax; j0 += kBc) {
          const std::int64_t bc = std::min(kBc, jmax - j0);
          T* s = sbuf.data();
          gemm<T>(false, true, br, bc, E, qb + i0 * qld, qld, kb + j0 * kld, kld, T(0), s, bc);
          mask_tile(p, b, i0, br, j0, bc, s);
          for (std::int64_t r = 0; r < br; ++r) {
            T* row = s + r * bc;
            const T mx = row_max(row, bc, m[static_cast<std::size_t>(r)]);
            const auto ru = static_cast<std::size_t>(r);
            if (mx == ninf) {  // nothing kept yet in this row
              std::fill(row, row + bc, T(0));
              alpha[ru] = T(1);
              continue;
            }
            alpha[ru] = std::exp(m[ru] - mx);  // 0 when m was −inf
            const std::int64_t n = kept_columns(p, i0 + r, j0, bc);
            for (std::int64_t c = 0; c < n; ++c) row[c] = vexp(row[c] - mx);  // vectorised
            std::fill(row + n, row + bc, T(0));
            const T sum = row_sum(row, n);
            l[ru] = l[ru] * alpha[ru] + sum;
            m[ru] = mx;
            if (p.dropout_p > 0)
              for (std::int64_t c = 0; c < bc; ++c)
                row[c] *= dropout_factor<T>(p, b, i0 + r, j0 + c);
            if (alpha[ru] != T(1)) {
              T* a = acc.data() + r * Ev;
              for (std::int64_t e = 0; e < Ev; ++e) a[e] *= alpha[ru];
            }
          }
          gemm<T>(false, false, br, Ev, bc, s, bc, vb + j0 * vld, vld, T(1), acc.data(), Ev);
        }
        for (std::int64_t r = 0; r < br; ++r) {
          const auto ru = static_cast<std::size_t>(r);
          T* o = ob + (i0 + r) * old;
          const T* a = acc.data() + r * Ev;
          if (l[ru] == T(0)) {  // no kept key: output 0, lse −inf
            std::fill(o, o + Ev, T(0));
            lse[b * L + i0 + r] = ninf;
            continue;
          }
          const T inv = T(1) / l[ru];
          for (std::int64_t e = 0; e < Ev; ++e) o[e] = a[e] * inv;
          lse[b * L + i0 + r] = m[ru] + std::log(l[ru]);
        }
      }
    }
  });
}

template <class T>
void attention_backward_kernel(const AttentionProblem& p, const T* q, const T* k, const T* v,
                               const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv,
                               T* dmask) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const std::int64_t L = p.L, S = p.S, E = p.E, Ev = p.Ev;
  const T scale = static_cast<T>(p.scale);
  const std::int64_t qld = p.q.ld, kld = p.k.ld, vld = p.v.ld, old = p.out.ld, gld = p.dout.ld,
                     dqld = p.dq.ld, dkld = p.dk.ld, dvld = p.dv.ld;
  parallel_for(p.B, 1, [&](std::int64_t b0, std::int64_t b1, std::int64_t) {
    std::vector<T> pbuf(static_cast<std::size_t>(kBr * kBc)), dpbuf(pbuf), pdbuf(pbuf);
    std::vector<T> dqacc(static_cast<std::size_t>(kBr * E)), D(static_cast<std::size_t>(kBr));
    for (std::int64_t b = b0; b < b1; ++b) {
      const auto bu = static_cast<std::size_t>(b);
      const T* qb = q + p.q.offset[bu];
      const T* kb = k + p.k.offset[bu];
      const T* vb = v + p.v.offset[bu];
      const T* ob = out + p.out.offset[bu];
      const T* gb = dout + p.dout.offset[bu];
      T* dqb = dq + p.dq.offset[bu];
      T* dkb = dk + p.dk.offset[bu];
      T* dvb = dv + p.dv.offset[bu];
      for (std::int64_t j = 0; j < S; ++j) {
        std::fill(dkb + j * dkld, dkb + j * dkld + E, T(0));
        std::fill(dvb + j * dvld, dvb + j * dvld + Ev, T(0));
      }
      if (dmask != nullptr) std::fill(dmask + b * L * S, dmask + (b + 1) * L * S, T(0));
      for (std::int64_t i0 = 0; i0 < L; i0 += kBr) {
        const std::int64_t br = std::min(kBr, L - i0);
        std::fill(dqacc.begin(), dqacc.end(), T(0));
        for (std::int64_t r = 0; r < br; ++r) {
          T d = 0;
          const T* gr = gb + (i0 + r) * gld;
          const T* orow = ob + (i0 + r) * old;
          for (std::int64_t e = 0; e < Ev; ++e) d += gr[e] * orow[e];
          D[static_cast<std::size_t>(r)] = d;
        }
        const std::int64_t jmax = key_end(p, i0 + br - 1);
        for (std::int64_t j0 = 0; j0 < jmax; j0 += kBc) {
          const std::int64_t bc = std::min(kBc, jmax - j0);
          T* P = pbuf.data();
          T* Pd = p.dropout_p > 0 ? pdbuf.data() : P;
          T* dP = dpbuf.data();
          gemm<T>(false, true, br, bc, E, qb + i0 * qld, qld, kb + j0 * kld, kld, T(0), P, bc);
          mask_tile(p, b, i0, br, j0, bc, P);
          for (std::int64_t r = 0; r < br; ++r) {
            const T ls = lse[b * L + i0 + r];
            T* row = P + r * bc;
            const std::int64_t n = ls == ninf ? 0 : kept_columns(p, i0 + r, j0, bc);
            for (std::int64_t c = 0; c < n; ++c) row[c] = vexp(row[c] - ls);  // 0 at −inf
            std::fill(row + n, row + bc, T(0));
            if (p.dropout_p > 0)
              for (std::int64_t c = 0; c < bc; ++c)
                Pd[r * bc + c] = row[c] * dropout_factor<T>(p, b, i0 + r, j0 + c);
          }
          // dv_j += Pdᵀ·dO_i; dPd = dO_i·v_jᵀ.
          gemm<T>(true, false, bc, Ev, br, Pd, bc, gb + i0 * gld, gld, T(1), dvb + j0 * dvld, dvld);
          gemm<T>(false, true, br, bc, Ev, gb + i0 * gld, gld, vb + j0 * vld, vld, T(0), dP, bc);
          // dS = P∘(dP − D), dP = dPd∘dropout factor; written over dP.
          for (std::int64_t r = 0; r < br; ++r) {
            const T d = D[static_cast<std::size_t>(r)];
            for (std::int64_t c = 0; c < bc; ++c) {
              T g = dP[r * bc + c];
              if (p.dropout_p > 0) g *= dropout_factor<T>(p, b, i0 + r, j0 + c);
              dP[r * bc + c] = P[r * bc + c] * (g - d);
            }
            if (dmask != nullptr)
              std::copy(dP + r * bc, dP + (r + 1) * bc, dmask + (b * L + i0 + r) * S + j0);
          }
          gemm<T>(false, false, br, E, bc, dP, bc, kb + j0 * kld, kld, T(1), dqacc.data(), E);
          gemm<T>(true, false, bc, E, br, dP, bc, qb + i0 * qld, qld, T(1), dkb + j0 * dkld, dkld);
        }
        for (std::int64_t r = 0; r < br; ++r)
          for (std::int64_t e = 0; e < E; ++e)
            dqb[(i0 + r) * dqld + e] = dqacc[static_cast<std::size_t>(r * E + e)] * scale;
      }
      for (std::int64_t j = 0; j < S; ++j)
        for (std::int64_t e = 0; e < E; ++e) dkb[j * dkld + e] *= scale;
    }
  });
}

template void attention_forward_kernel<float>(const AttentionProblem&, const float*, const float*,
                                              const float*, float*, float*);
template void attention_forward_kernel<double>(const AttentionProblem&, const double*,
                                               const double*, const double*, double*, double*);
template void attention_backward_kernel<float>(const AttentionProblem&, const float*, const float*,
                                               const float*, const float*, const float*,
                                               const float*, float*, float*, float*, float*);
template void attention_backward_kernel<double>(const AttentionProblem&, const double*,
                                                const double*, const double*, const double*,
                                                const double*, const double*, double*, double*,
                                                double*, double*);

}  // namespace xgrad::detail
