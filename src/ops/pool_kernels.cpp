// The raw kernels of max_pool2d, avg_pool2d and adaptive_avg_pool2d (pool.cpp holds the
// autograd side) on NCHW tensors. Every kernel works on one contiguous H×W plane at a time,
// with each window's row and column range clipped to the input once (no per-element bounds
// tests); the N·C planes are split across threads by detail::parallel_for
// (src/detail/parallel.hpp). The 2×2 stride-2 max pool of the CNN has its own loops over pairs
// of input rows: AVX2 (8 outputs per step) for float32 when the CPU has it (chosen at run
// time: detail/cpu.hpp), scalar otherwise.
#include "ops/pool_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

// The AVX2 kernels are compiled for AVX2 whatever the build's -march (function target
// attribute) and chosen at run time when the CPU has it.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define XGRAD_POOL_AVX2 1
#define XGRAD_AVX2_FN __attribute__((target("avx2")))
#endif

#include "detail/cpu.hpp"
#include "detail/parallel.hpp"

namespace xgrad::detail {

namespace {

// Planes per parallel chunk: enough that a chunk is worth a thread (~64 K elements read).
std::int64_t min_planes(std::int64_t plane_elems) {
  return std::max<std::int64_t>(1, 65536 / std::max<std::int64_t>(1, plane_elems));
}

// ---- max pool ------------------------------------------------------------------------------

// torch's CPU rule (aten/src/ATen/native/cpu/MaxPoolKernel.cpp): scanning from a running
// maximum of -inf, replace the choice when the element is greater or NaN.
template <class T>
inline void take_max(T v, std::int32_t i, T& m, std::int32_t& mi) {
  if (v > m || std::isnan(v)) {
    m = v;
    mi = i;
  }
}

// The 2x2, stride-2, unpadded pool of one output row from input rows r0 and r1, written with
// selects so that GCC vectorises it: the same choices as take_max in the same order (the
// first element always becomes the choice: it is either > -inf, NaN, or -inf itself).
template <class T, bool kIdx>
void max_pool_row_2x2(const T* __restrict r0, const T* __restrict r1, T* __restrict y,
                      std::int32_t* __restrict idx, std::int64_t OW, std::int32_t base,
                      std::int32_t W) {
  for (std::int64_t ow = 0; ow < OW; ++ow) {
    const T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
    T m = a;
    std::int32_t k = 0;
    bool t = (b > m) | (b != b);
    m = t ? b : m;
    k = t ? 1 : k;
    t = (c > m) | (c != c);
    m = t ? c : m;
    k = t ? W : k;
    t = (d > m) | (d != d);
    m = t ? d : m;
    k = t ? W + 1 : k;
    y[ow] = m;
    if constexpr (kIdx) idx[ow] = base + 2 * static_cast<std::int32_t>(ow) + k;
  }
}

#if defined(XGRAD_POOL_AVX2)
// AVX2 when detail::isa() chose it (the CPU has it and XGRAD_CPU_CAPABILITY does not cap it).
bool cpu_has_avx2() {
  return detail::use_avx2();
}

// Lanes [0, n) of a mask for the AVX2 masked loads and stores, n in [0, 8].
XGRAD_AVX2_FN inline __m256i lane_mask(std::int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Elements 0, 2, .., 14 and 1, 3, .., 15 of the 16 floats lo:hi.
XGRAD_AVX2_FN inline void deinterleave(__m256 lo, __m256 hi, __m256& even, __m256& odd) {
  const __m256 e = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));  // lo0 lo2 hi0 hi2 | ..
  const __m256 o = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

// take_max on 8 windows at once: replace (m, k) by (v, kv) where v > m or v is NaN.
XGRAD_AVX2_FN inline void take_max8(__m256 v, __m256i kv, __m256& m, __m256i& k) {
  const __m256 t = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  m = _mm256_blendv_ps(m, v, t);
  k = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(k), _mm256_castsi256_ps(kv), t));
}

// max_pool_row_2x2 for float, 8 outputs per step; the row's last partial step uses masked
// loads and stores (rows of the CNN are 14 and 7 outputs long).
template <bool kIdx>
XGRAD_AVX2_FN void max_pool_row_2x2_avx2(const float* r0, const float* r1, float* y,
                                         std::int32_t* idx, std::int64_t OW, std::int32_t base,
                                         std::int32_t W) {
  const __m256i k1 = _mm256_set1_epi32(1), kW = _mm256_set1_epi32(W),
                kW1 = _mm256_set1_epi32(W + 1);
  const __m256i iota2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  for (std::int64_t ow = 0; ow < OW; ow += 8) {
    const std::int64_t n = std::min<std::int64_t>(8, OW - ow);
    const float* p0 = r0 + 2 * ow;
    const float* p1 = r1 + 2 * ow;
    __m256 lo0, hi0, lo1, hi1;
    if (n == 8) {
      lo0 = _mm256_loadu_ps(p0);
      hi0 = _mm256_loadu_ps(p0 + 8);
      lo1 = _mm256_loadu_ps(p1);
      hi1 = _mm256_loadu_ps(p1 + 8);
    } else {
      const __m256i mlo = lane_mask(std::min<std::int64_t>(8, 2 * n));
      const __m256i mhi = lane_mask(std::max<std::int64_t>(0, 2 * n - 8));
      lo0 = _mm256_maskload_ps(p0, mlo);
      hi0 = _mm256_maskload_ps(p0 + 8, mhi);
      lo1 = _mm256_maskload_ps(p1, mlo);
      hi1 = _mm256_maskload_ps(p1 + 8, mhi);
    }
    __m256 a, b, c, d;
    deinterleave(lo0, hi0, a, b);
    deinterleave(lo1, hi1, c, d);
    __m256 m = a;
    __m256i k = _mm256_setzero_si256();
    take_max8(b, k1, m, k);
    take_max8(c, kW, m, k);
    take_max8(d, kW1, m, k);
    __m256i id;
    if constexpr (kIdx) {
      id = _mm256_add_epi32(
          _mm256_add_epi32(_mm256_set1_epi32(base + 2 * static_cast<std::int32_t>(ow)), iota2), k);
    }
    if (n == 8) {
      _mm256_storeu_ps(y + ow, m);
      if constexpr (kIdx) _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + ow), id);
    } else {
      const __m256i mask = lane_mask(n);
      _mm256_maskstore_ps(y + ow, mask, m);
      if constexpr (kIdx) _mm256_maskstore_epi32(idx + ow, mask, id);
    }
  }
}

// g where k == kv, else 0.
XGRAD_AVX2_FN inline __m256 pick8(__m256 g, __m256i k, __m256i kv) {
  return _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, kv)));
}

// Interleaves e and o into p[0, 2n): e0 o0 e1 o1 ...
XGRAD_AVX2_FN inline void store_interleaved(float* p, __m256 e, __m256 o, std::int64_t n) {
  const __m256 lo = _mm256_unpacklo_ps(e, o), hi = _mm256_unpackhi_ps(e, o);
  const __m256 v0 = _mm256_permute2f128_ps(lo, hi, 0x20);
  const __m256 v1 = _mm256_permute2f128_ps(lo, hi, 0x31);
  if (n == 8) {
    _mm256_storeu_ps(p, v0);
    _mm256_storeu_ps(p + 8, v1);
  } else {
    _mm256_maskstore_ps(p, lane_mask(std::min<std::int64_t>(8, 2 * n)), v0);
    _mm256_maskstore_ps(p + 8, lane_mask(std::max<std::int64_t>(0, 2 * n - 8)), v1);
  }
}

// The adjoint of max_pool_row_2x2_avx2: writes both input rows (2·OW elements each) in full,
// the gradient where the index points and zeros elsewhere.
XGRAD_AVX2_FN void max_pool_row_2x2_backward_avx2(const float* gy, const std::int32_t* idx,
                                                  float* r0, float* r1, std::int64_t OW,
                                                  std::int32_t base, std::int32_t W) {
  const __m256i k1 = _mm256_set1_epi32(1), kW = _mm256_set1_epi32(W),
                kW1 = _mm256_set1_epi32(W + 1);
  const __m256i iota2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  for (std::int64_t ow = 0; ow < OW; ow += 8) {
    const std::int64_t n = std::min<std::int64_t>(8, OW - ow);
    const __m256i mask = lane_mask(n);
    const __m256 g = n == 8 ? _mm256_loadu_ps(gy + ow) : _mm256_maskload_ps(gy + ow, mask);
    const __m256i id = n == 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + ow))
                              : _mm256_maskload_epi32(idx + ow, mask);
    const __m256i k = _mm256_sub_epi32(
        id, _mm256_add_epi32(_mm256_set1_epi32(base + 2 * static_cast<std::int32_t>(ow)), iota2));
    store_interleaved(r0 + 2 * ow, pick8(g, k, _mm256_setzero_si256()), pick8(g, k, k1), n);
    store_interleaved(r1 + 2 * ow, pick8(g, k, kW), pick8(g, k, kW1), n);
  }
}
#endif

// Backward of one plane of max pooling: gx = 0, then each output's gradient added at its
// index. The 2x2 stride-2 pool of an even-sized plane, whose windows tile it, instead writes
// every input element once.
template <class T>
void max_pool_plane_backward(const T* __restrict gy, const std::int32_t* __restrict idx,
                             T* __restrict gx, const PoolGeom& g) {
  const std::int64_t W = g.W, OW = g.OW;
  const bool tiles = g.kH == 2 && g.kW == 2 && g.sH == 2 && g.sW == 2 && g.pH == 0 && g.pW == 0 &&
                     g.H % 2 == 0 && W % 2 == 0;
  if (tiles) {
    for (std::int64_t oh = 0; oh < g.OH; ++oh) {
      T* r0 = gx + 2 * oh * W;
      T* r1 = r0 + W;
      const auto base = static_cast<std::int32_t>(2 * oh * W);
#if defined(XGRAD_POOL_AVX2)
      if constexpr (std::is_same_v<T, float>) {
        if (cpu_has_avx2()) {
          max_pool_row_2x2_backward_avx2(gy + oh * OW, idx + oh * OW, r0, r1, OW, base,
                                         static_cast<std::int32_t>(W));
          continue;
        }
      }
#endif
      for (std::int64_t ow = 0; ow < OW; ++ow) {
        const std::int32_t k = idx[oh * OW + ow] - base - 2 * static_cast<std::int32_t>(ow);
        const T v = gy[oh * OW + ow];
        r0[2 * ow] = k == 0 ? v : T(0);
        r0[2 * ow + 1] = k == 1 ? v : T(0);
        r1[2 * ow] = k == W ? v : T(0);
        r1[2 * ow + 1] = k == W + 1 ? v : T(0);
      }
    }
    return;
  }
  std::fill(gx, gx + g.in_plane(), T(0));
  const std::int64_t op = g.out_plane();
  for (std::int64_t k = 0; k < op; ++k) gx[idx[k]] += gy[k];
}

// One plane. idx (flat indices into the plane, as torch's return_indices) may be null.
template <class T>
void max_pool_plane(const T* __restrict x, T* __restrict y, std::int32_t* __restrict idx,
                    const PoolGeom& g) {
  const std::int64_t H = g.H, W = g.W, OW = g.OW;
  if (g.kH == 2 && g.kW == 2 && g.sH == 2 && g.sW == 2 && g.pH == 0 && g.pW == 0) {
    for (std::int64_t oh = 0; oh < g.OH; ++oh) {
      const T* r0 = x + 2 * oh * W;
      const auto base = static_cast<std::int32_t>(2 * oh * W);
#if defined(XGRAD_POOL_AVX2)
      if constexpr (std::is_same_v<T, float>) {
        if (cpu_has_avx2()) {
          if (idx != nullptr) {
            max_pool_row_2x2_avx2<true>(r0, r0 + W, y + oh * OW, idx + oh * OW, OW, base,
                                        static_cast<std::int32_t>(W));
          } else {
            max_pool_row_2x2_avx2<false>(r0, r0 + W, y + oh * OW, nullptr, OW, base,
                                         static_cast<std::int32_t>(W));
          }
          continue;
        }
      }
#endif
      if (idx != nullptr) {
        max_pool_row_2x2<T, true>(r0, r0 + W, y + oh * OW, idx + oh * OW, OW, base,
                                  static_cast<std::int32_t>(W));
      } else {
        max_pool_row_2x2<T, false>(r0, r0 + W, y + oh * OW, nullptr, OW, base,
                                   static_cast<std::int32_t>(W));
      }
    }
    return;
  }
  for (std::int64_t oh = 0; oh < g.OH; ++oh) {
    const std::int64_t h0 = oh * g.sH - g.pH;
    const std::int64_t hs = std::max<std::int64_t>(h0, 0), he = std::min(h0 + g.kH, H);
    for (std::int64_t ow = 0; ow < OW; ++ow) {
      const std::int64_t w0 = ow * g.sW - g.pW;
      const std::int64_t ws = std::max<std::int64_t>(w0, 0), we = std::min(w0 + g.kW, W);
      T m = -std::numeric_limits<T>::infinity();
      auto mi = static_cast<std::int32_t>(hs * W + ws);
      for (std::int64_t ih = hs; ih < he; ++ih) {
        const T* r = x + ih * W;
        for (std::int64_t iw = ws; iw < we; ++iw)
          take_max(r[iw], static_cast<std::int32_t>(ih * W + iw), m, mi);
      }
      y[oh * OW + ow] = m;
      if (idx != nullptr) idx[oh * OW + ow] = mi;
    }
  }
}

// ---- average pools ---------------------------------------------------------------------------

template <class T>
void avg_pool_plane(const T* __restrict x, T* __restrict y, const PoolGeom& g) {
  const T divisor = static_cast<T>(g.kH * g.kW);
  for (std::int64_t oh = 0; oh < g.OH; ++oh) {
    const std::int64_t h0 = oh * g.sH - g.pH;
    const std::int64_t hs = std::max<std::int64_t>(h0, 0), he = std::min(h0 + g.kH, g.H);
    for (std::int64_t ow = 0; ow < g.OW; ++ow) {
      const std::int64_t w0 = ow * g.sW - g.pW;
      const std::int64_t ws = std::max<std::int64_t>(w0, 0), we = std::min(w0 + g.kW, g.W);
      T s = T(0);
      for (std::int64_t ih = hs; ih < he; ++ih) {
        const T* r = x + ih * g.W;
        for (std::int64_t iw = ws; iw < we; ++iw) s += r[iw];
      }
      y[oh * g.OW + ow] = s / divisor;
    }
  }
}

template <class T>
void avg_pool_plane_backward(const T* __restrict gy, T* __restrict gx, const PoolGeom& g) {
  const T divisor = static_cast<T>(g.kH * g.kW);
  std::fill(gx, gx + g.in_plane(), T(0));
  for (std::int64_t oh = 0; oh < g.OH; ++oh) {
    const std::int64_t h0 = oh * g.sH - g.pH;
    const std::int64_t hs = std::max<std::int64_t>(h0, 0), he = std::min(h0 + g.kH, g.H);
    for (std::int64_t ow = 0; ow < g.OW; ++ow) {
      const std::int64_t w0 = ow * g.sW - g.pW;
      const std::int64_t ws = std::max<std::int64_t>(w0, 0), we = std::min(w0 + g.kW, g.W);
      const T v = gy[oh * g.OW + ow] / divisor;
      for (std::int64_t ih = hs; ih < he; ++ih) {
        T* r = gx + ih * g.W;
        for (std::int64_t iw = ws; iw < we; ++iw) r[iw] += v;
      }
    }
  }
}

// Adaptive windows: [⌊o·in/out⌋, ⌈(o+1)·in/out⌉).
std::int64_t adaptive_start(std::int64_t o, std::int64_t out, std::int64_t in) {
  return (o * in) / out;
}
std::int64_t adaptive_end(std::int64_t o, std::int64_t out, std::int64_t in) {
  return ((o + 1) * in + out - 1) / out;
}

template <class T>
void adaptive_plane(const T* __restrict x, T* __restrict y, const PoolGeom& g) {
  for (std::int64_t oh = 0; oh < g.OH; ++oh) {
    const std::int64_t hs = adaptive_start(oh, g.OH, g.H), he = adaptive_end(oh, g.OH, g.H);
    for (std::int64_t ow = 0; ow < g.OW; ++ow) {
      const std::int64_t ws = adaptive_start(ow, g.OW, g.W), we = adaptive_end(ow, g.OW, g.W);
      T s = T(0);
      for (std::int64_t ih = hs; ih < he; ++ih) {
        const T* r = x + ih * g.W;
        for (std::int64_t iw = ws; iw < we; ++iw) s += r[iw];
      }
      y[oh * g.OW + ow] = s / static_cast<T>((he - hs) * (we - ws));
    }
  }
}

template <class T>
void adaptive_plane_backward(const T* __restrict gy, T* __restrict gx, const PoolGeom& g) {
  std::fill(gx, gx + g.in_plane(), T(0));
  for (std::int64_t oh = 0; oh < g.OH; ++oh) {
    const std::int64_t hs = adaptive_start(oh, g.OH, g.H), he = adaptive_end(oh, g.OH, g.H);
    for (std::int64_t ow = 0; ow < g.OW; ++ow) {
      const std::int64_t ws = adaptive_start(ow, g.OW, g.W), we = adaptive_end(ow, g.OW, g.W);
      const T v = gy[oh * g.OW + ow] / static_cast<T>((he - hs) * (we - ws));
      for (std::int64_t ih = hs; ih < he; ++ih) {
        T* r = gx + ih * g.W;
        for (std::int64_t iw = ws; iw < we; ++iw) r[iw] += v;
      }
    }
  }
}

// Runs plane_fn(in_plane_ptr, out_plane_ptr, geom) over all planes of a contiguous input.

// Gather of one plane: y[k] = t[idx[k]], the values max pooling chose (by the stored indices).
template <class T>
void max_pool_plane_gather(const T* __restrict t, const std::int32_t* __restrict idx,
                           T* __restrict y, const PoolGeom& g) {
  const std::int64_t op = g.out_plane();
  for (std::int64_t k = 0; k < op; ++k) y[k] = t[idx[k]];
}

// Runs plane_fn(in, out, p, in_plane_elems, out_plane_elems) for every plane p of a
// [N, C, ·, ·] tensor into a fresh tensor of out_shape, planes split across threads (chunks
// sized by g's input plane, forward and backward alike).
template <class F>
Tensor map_planes(const char* op, const PoolGeom& g, const Tensor& in, const Shape& out_shape,
                  F plane_fn) {
  const Tensor x = in.detach().contiguous();
  Tensor y = empty(out_shape, in.dtype());
  const std::int64_t ip = x.shape()[2] * x.shape()[3], op_ = out_shape[2] * out_shape[3];
  dispatch_floating(in.dtype(), op, [&]<class T>() {
    const T* px = x.data_ptr<T>();
    T* py = y.data_ptr<T>();
    parallel_for(g.planes(), min_planes(g.in_plane()),
                 [&](std::int64_t p0, std::int64_t p1, std::int64_t) {
                   for (std::int64_t p = p0; p < p1; ++p) plane_fn(px, py, p, ip, op_);
                 });
  });
  return y;
}

}  // namespace

Tensor max_pool_kernel(const PoolGeom& g, const Tensor& x, std::int32_t* idx) {
  return map_planes(
      "max_pool2d", g, x, g.output_shape(),
      [&]<class T>(const T* px, T* py, std::int64_t p, std::int64_t ip, std::int64_t op) {
        max_pool_plane(px + p * ip, py + p * op, idx != nullptr ? idx + p * op : nullptr, g);
      });
}

Tensor max_pool_scatter_kernel(const PoolGeom& g, const Tensor& gy, const std::int32_t* idx) {
  return map_planes(
      "max_pool2d_backward", g, gy, g.input_shape(),
      [&]<class T>(const T* pg, T* px, std::int64_t p, std::int64_t op, std::int64_t ip) {
        max_pool_plane_backward(pg + p * op, idx + p * op, px + p * ip, g);
      });
}

Tensor max_pool_gather_kernel(const PoolGeom& g, const Tensor& t, const std::int32_t* idx) {
  return map_planes(
      "max_pool2d", g, t, g.output_shape(),
      [&]<class T>(const T* pt, T* py, std::int64_t p, std::int64_t ip, std::int64_t op) {
        max_pool_plane_gather(pt + p * ip, idx + p * op, py + p * op, g);
      });
}

Tensor avg_pool_kernel(const PoolGeom& g, const Tensor& x, bool adaptive) {
  return map_planes(
      adaptive ? "adaptive_avg_pool2d" : "avg_pool2d", g, x, g.output_shape(),
      [&]<class T>(const T* px, T* py, std::int64_t p, std::int64_t ip, std::int64_t op) {
        if (adaptive) {
          adaptive_plane(px + p * ip, py + p * op, g);
        } else {
          avg_pool_plane(px + p * ip, py + p * op, g);
        }
      });
}

Tensor avg_pool_backward_kernel(const PoolGeom& g, const Tensor& gy, bool adaptive) {
  return map_planes(
      adaptive ? "adaptive_avg_pool2d_backward" : "avg_pool2d_backward", g, gy, g.input_shape(),
      [&]<class T>(const T* pg, T* px, std::int64_t p, std::int64_t op, std::int64_t ip) {
        if (adaptive) {
          adaptive_plane_backward(pg + p * op, px + p * ip, g);
        } else {
          avg_pool_plane_backward(pg + p * op, px + p * ip, g);
        }
      });
}

}  // namespace xgrad::detail
