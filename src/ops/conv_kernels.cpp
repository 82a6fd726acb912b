// conv2d's raw kernels: im2col + GEMM (Chellapilla, Puri & Simard 2006), a batch's images split
// across get_num_batch_threads() threads by detail::parallel_for (src/detail/parallel.hpp).
//
// Kernel design (see docs/cnn.md): every loop walks contiguous memory. im2col and col2im
// work one kernel tap (c, i, j) at a time; for the common stride-1 "same width" case a tap is
// one contiguous shifted block copy of the input plane plus a few zeroed border columns, and
// otherwise one short contiguous (or strided, for stride > 1) copy per output row, with the
// valid column range computed once per tap — no per-element index arithmetic or bounds tests.
// The im2col buffer is per thread and reused across calls, so it stays in L2 while the GEMM
// reads it. Each image's GEMM writes straight into the NCHW output (no transposes).
#include "ops/conv_kernels.hpp"

#include <algorithm>
#include <vector>

#include "detail/blas.hpp"
#include "detail/cpu.hpp"
#include "detail/parallel.hpp"

namespace xgrad::detail {

namespace {

// ---- geometry ---------------------------------------------------------------------------------

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

// The output positions o in [0, out) whose input coordinate o·s + off lies in [0, in).
struct Range {
  std::int64_t lo, hi;
};
Range valid_range(std::int64_t off, std::int64_t s, std::int64_t in, std::int64_t out) {
  std::int64_t lo = off >= 0 ? 0 : ceil_div(-off, s);
  std::int64_t hi = in - off > 0 ? ceil_div(in - off, s) : 0;
  hi = std::min(hi, out);
  lo = std::min(lo, hi);
  return {lo, hi};
}

// ---- im2col / col2im ---------------------------------------------------------------------------

// cols[K, P] from one image's group of channels x[Cg, H, W] (Chellapilla et al. 2006, §2):
// row (c, i, j) holds x[c, oh·sH − pH + i·dH, ow·sW − pW + j·dW] for every output pixel (oh,
// ow), zero where that falls in the padding.
template <class T>
[[gnu::always_inline]] inline void im2col_body(const T* __restrict x, const ConvGeom& g,
                                               T* __restrict cols) {
  const std::int64_t H = g.H, W = g.W, OH = g.OH, OW = g.OW, P = g.P();
  // Stride 1 with output width = input width: a tap's rows are one contiguous shifted block.
  const bool block = g.sH == 1 && g.sW == 1 && OW == W;
  for (std::int64_t c = 0; c < g.Cg(); ++c) {
    const T* xc = x + c * H * W;
    for (std::int64_t i = 0; i < g.kH; ++i) {
      const std::int64_t offh = i * g.dH - g.pH;
      const Range rh = valid_range(offh, g.sH, H, OH);
      for (std::int64_t j = 0; j < g.kW; ++j) {
        T* row = cols + ((c * g.kH + i) * g.kW + j) * P;
        const std::int64_t offw = j * g.dW - g.pW;
        const Range rw = valid_range(offw, g.sW, W, OW);
        std::fill(row, row + rh.lo * OW, T(0));
        std::fill(row + rh.hi * OW, row + P, T(0));
        if (rh.lo >= rh.hi) continue;
        if (rw.lo >= rw.hi) {
          std::fill(row + rh.lo * OW, row + rh.hi * OW, T(0));
          continue;
        }
        if (block) {
          // dst index d maps to src index d + delta over the whole valid block; the columns
          // outside [rw.lo, rw.hi) got neighbouring rows' values and are zeroed after.
          const std::int64_t first = rh.lo * OW + rw.lo, last = (rh.hi - 1) * OW + rw.hi;
          const T* src = xc + offh * W + offw;
          for (std::int64_t d = first; d < last; ++d) row[d] = src[d];
          if (rw.lo > 0 || rw.hi < OW) {
            for (std::int64_t oh = rh.lo; oh < rh.hi; ++oh) {
              T* r = row + oh * OW;
              for (std::int64_t ow = 0; ow < rw.lo; ++ow) r[ow] = T(0);
              for (std::int64_t ow = rw.hi; ow < OW; ++ow) r[ow] = T(0);
            }
          }
          continue;
        }
        for (std::int64_t oh = rh.lo; oh < rh.hi; ++oh) {
          T* r = row + oh * OW;
          const T* src = xc + (oh * g.sH + offh) * W + offw;
          for (std::int64_t ow = 0; ow < rw.lo; ++ow) r[ow] = T(0);
          if (g.sW == 1) {
            for (std::int64_t ow = rw.lo; ow < rw.hi; ++ow) r[ow] = src[ow];
          } else {
            const std::int64_t sW = g.sW;
            for (std::int64_t ow = rw.lo; ow < rw.hi; ++ow) r[ow] = src[ow * sW];
          }
          for (std::int64_t ow = rw.hi; ow < OW; ++ow) r[ow] = T(0);
        }
      }
    }
  }
}

// The adjoint of im2col: gx[Cg, H, W] += the entries of cols[K, P] at the positions im2col read
// them from (padding entries are dropped). Overwrites the padding columns of `cols` with
// zeros (it is scratch).
template <class T>
[[gnu::always_inline]] inline void col2im_body(T* __restrict cols, const ConvGeom& g,
                                               T* __restrict gx) {
  const std::int64_t H = g.H, W = g.W, OH = g.OH, OW = g.OW, P = g.P();
  const bool block = g.sH == 1 && g.sW == 1 && OW == W;
  for (std::int64_t c = 0; c < g.Cg(); ++c) {
    T* gc = gx + c * H * W;
    for (std::int64_t i = 0; i < g.kH; ++i) {
      const std::int64_t offh = i * g.dH - g.pH;
      const Range rh = valid_range(offh, g.sH, H, OH);
      if (rh.lo >= rh.hi) continue;
      for (std::int64_t j = 0; j < g.kW; ++j) {
        T* row = cols + ((c * g.kH + i) * g.kW + j) * P;
        const std::int64_t offw = j * g.dW - g.pW;
        const Range rw = valid_range(offw, g.sW, W, OW);
        if (rw.lo >= rw.hi) continue;
        if (block) {
          // Zero the padding columns, then one contiguous shifted block add.
          if (rw.lo > 0 || rw.hi < OW) {
            for (std::int64_t oh = rh.lo; oh < rh.hi; ++oh) {
              T* r = row + oh * OW;
              for (std::int64_t ow = 0; ow < rw.lo; ++ow) r[ow] = T(0);
              for (std::int64_t ow = rw.hi; ow < OW; ++ow) r[ow] = T(0);
            }
          }
          const std::int64_t first = rh.lo * OW + rw.lo, last = (rh.hi - 1) * OW + rw.hi;
          T* dst = gc + offh * W + offw;
          for (std::int64_t d = first; d < last; ++d) dst[d] += row[d];
          continue;
        }
        for (std::int64_t oh = rh.lo; oh < rh.hi; ++oh) {
          const T* r = row + oh * OW;
          T* dst = gc + (oh * g.sH + offh) * W + offw;
          if (g.sW == 1) {
            for (std::int64_t ow = rw.lo; ow < rw.hi; ++ow) dst[ow] += r[ow];
          } else {
            const std::int64_t sW = g.sW;
            for (std::int64_t ow = rw.lo; ow < rw.hi; ++ow) dst[ow * sW] += r[ow];
          }
        }
      }
    }
  }
}

// Σ r[0..n) with 16 independent partial sums (vectorisable without reassociation flags),
// added up in double.
template <class T>
[[gnu::always_inline]] inline double row_sum_body(const T* __restrict r, std::int64_t n) {
  constexpr int kLanes = 16;
  T acc[kLanes] = {};
  std::int64_t p = 0;
  for (; p + kLanes <= n; p += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += r[p + l];
  double s = 0;
  for (; p < n; ++p) s += static_cast<double>(r[p]);
  for (int l = 0; l < kLanes; ++l) s += static_cast<double>(acc[l]);
  return s;
}

// im2col, col2im and row_sum, each compiled for the build's baseline and for AVX2 + FMA and
// chosen at run time (detail/cpu.hpp), so that a portable build moves and adds 8 floats a
// step as a native one does. Copies, element-wise adds and the fixed 16 lanes of row_sum:
// the same bits in both variants.
template <class T>
void im2col_base(const T* x, const ConvGeom& g, T* cols) {
  im2col_body(x, g, cols);
}
template <class T>
XGRAD_TARGET_AVX2 void im2col_avx2(const T* x, const ConvGeom& g, T* cols) {
  im2col_body(x, g, cols);
}
template <class T>
void im2col(const T* x, const ConvGeom& g, T* cols) {
  use_avx2() ? im2col_avx2(x, g, cols) : im2col_base(x, g, cols);
}

template <class T>
void col2im_base(T* cols, const ConvGeom& g, T* gx) {
  col2im_body(cols, g, gx);
}
template <class T>
XGRAD_TARGET_AVX2 void col2im_avx2(T* cols, const ConvGeom& g, T* gx) {
  col2im_body(cols, g, gx);
}
template <class T>
void col2im(T* cols, const ConvGeom& g, T* gx) {
  use_avx2() ? col2im_avx2(cols, g, gx) : col2im_base(cols, g, gx);
}

template <class T>
double row_sum_base(const T* r, std::int64_t n) {
  return row_sum_body(r, n);
}
template <class T>
XGRAD_TARGET_AVX2 double row_sum_avx2(const T* r, std::int64_t n) {
  return row_sum_body(r, n);
}
template <class T>
double row_sum(const T* r, std::int64_t n) {
  return use_avx2() ? row_sum_avx2(r, n) : row_sum_base(r, n);
}

// A per-thread scratch buffer, grown as needed and reused across calls.
template <class T>
T* scratch(std::size_t n, int slot) {
  thread_local std::vector<T> bufs[2];
  std::vector<T>& b = bufs[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

// ---- forward and backward kernels -----------------------------------------------------------

// Images per parallel chunk: enough that a chunk is ~0.5 M multiply-adds.
std::int64_t min_images(const ConvGeom& g) {
  const std::int64_t per_image = std::max<std::int64_t>(1, g.O * g.K() * g.P());
  return std::max<std::int64_t>(1, 500000 / per_image);
}

template <class T>
void conv_forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* out) {
  const std::int64_t K = g.K(), P = g.P(), Og = g.Og(), Cg = g.Cg();
  const std::int64_t in_img = g.C * g.H * g.W, out_img = g.O * P;
  detail::parallel_for(g.N, min_images(g), [&](std::int64_t n0, std::int64_t n1, std::int64_t) {
    T* cols = g.pointwise() ? nullptr : scratch<T>(static_cast<std::size_t>(K * P), 0);
    for (std::int64_t n = n0; n < n1; ++n) {
      T* o = out + n * out_img;
      // The bias goes into the output first; the GEMM adds to it (beta = 1).
      if (b != nullptr) {
        for (std::int64_t oc = 0; oc < g.O; ++oc) std::fill(o + oc * P, o + (oc + 1) * P, b[oc]);
      }
      const T beta = b != nullptr ? T(1) : T(0);
      for (std::int64_t grp = 0; grp < g.groups; ++grp) {
        const T* xg = x + n * in_img + grp * Cg * g.H * g.W;
        const T* B = xg;  // pointwise: the input block is the column matrix
        if (cols != nullptr) {
          im2col(xg, g, cols);
          B = cols;
        }
        // out_g[Og, P] = W_g[Og, K] · cols[K, P]
        gemm<T>(false, false, Og, P, K, w + grp * Og * K, K, B, P, beta, o + grp * Og * P, P);
      }
    }
  });
}

// gx (if non-null), gw (if non-null), gb (if non-null) from gy [N, O, OH, OW].
template <class T>
void conv_backward(const ConvGeom& g, const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb) {
  const std::int64_t K = g.K(), P = g.P(), Og = g.Og(), Cg = g.Cg();
  const std::int64_t in_img = g.C * g.H * g.W, out_img = g.O * P, wsize = g.O * K;
  // Weight and bias gradients: one partial sum per chunk (chunk 0 straight into gw), added
  // up in chunk order, so the result does not depend on the number of threads.
  const std::int64_t chunks = detail::parallel_chunks(g.N, min_images(g));
  std::vector<T> gw_part(
      gw != nullptr ? static_cast<std::size_t>(std::max<std::int64_t>(0, chunks - 1) * wsize) : 0);
  std::vector<double> gb_part(gb != nullptr ? static_cast<std::size_t>(chunks * g.O) : 0, 0.0);
  if (gw != nullptr && chunks == 0) std::fill(gw, gw + wsize, T(0));
  detail::parallel_for(
      g.N, min_images(g), [&](std::int64_t n0, std::int64_t n1, std::int64_t chunk) {
        T* cols = (gw != nullptr && !g.pointwise()) ? scratch<T>(static_cast<std::size_t>(K * P), 0)
                                                    : nullptr;
        T* gcols = (gx != nullptr && !g.pointwise())
                       ? scratch<T>(static_cast<std::size_t>(K * P), 1)
                       : nullptr;
        T* gwc = nullptr;
        if (gw != nullptr) {
          gwc = chunk == 0 ? gw : gw_part.data() + (chunk - 1) * wsize;
          std::fill(gwc, gwc + wsize, T(0));
        }
        double* gbc = gb != nullptr ? gb_part.data() + chunk * g.O : nullptr;
        for (std::int64_t n = n0; n < n1; ++n) {
          const T* gyn = gy + n * out_img;
          if (gbc != nullptr) {
            for (std::int64_t oc = 0; oc < g.O; ++oc) gbc[oc] += row_sum(gyn + oc * P, P);
          }
          if (gcols != nullptr) std::fill(gx + n * in_img, gx + (n + 1) * in_img, T(0));
          for (std::int64_t grp = 0; grp < g.groups; ++grp) {
            const T* gyg = gyn + grp * Og * P;
            const std::int64_t in_off = n * in_img + grp * Cg * g.H * g.W;
            if (gwc != nullptr) {
              const T* B = x + in_off;
              if (cols != nullptr) {
                im2col(x + in_off, g, cols);
                B = cols;
              }
              // gW_g[Og, K] += gy_g[Og, P] · colsᵀ[P, K]
              gemm<T>(false, true, Og, K, P, gyg, P, B, P, T(1), gwc + grp * Og * K, K);
            }
            if (gx != nullptr) {
              const T* wg = w + grp * Og * K;
              if (gcols == nullptr) {
                // Pointwise: the column gradient is the input gradient itself.
                gemm<T>(true, false, K, P, Og, wg, K, gyg, P, T(0), gx + in_off, P);
              } else {
                // gcols[K, P] = W_gᵀ[K, Og] · gy_g[Og, P], scattered back by col2im.
                gemm<T>(true, false, K, P, Og, wg, K, gyg, P, T(0), gcols, P);
                col2im(gcols, g, gx + in_off);
              }
            }
          }
        }
      });
  if (gw != nullptr) {
    for (std::int64_t c = 1; c < chunks; ++c) {
      const T* part = gw_part.data() + (c - 1) * wsize;
      for (std::int64_t i = 0; i < wsize; ++i) gw[i] += part[i];
    }
  }
  if (gb != nullptr) {
    for (std::int64_t oc = 0; oc < g.O; ++oc) {
      double total = 0;
      for (std::int64_t c = 0; c < chunks; ++c)
        total += gb_part[static_cast<std::size_t>(c * g.O + oc)];
      gb[oc] = static_cast<T>(total);
    }
  }
}

}  // namespace

Tensor conv_forward_kernel(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& b) {
  Tensor out = empty(g.output_shape(), x.dtype());
  const Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous();
  const Tensor bc = b.defined() ? b.detach().contiguous() : Tensor();
  dispatch_floating(x.dtype(), "conv2d", [&]<class T>() {
    conv_forward<T>(g, xc.data_ptr<T>(), wc.data_ptr<T>(),
                    bc.defined() ? bc.data_ptr<T>() : nullptr, out.data_ptr<T>());
  });
  return out;
}

ConvGrads conv_backward_kernel(const ConvGeom& g, const Tensor& gy, const Tensor& x,
                               const Tensor& w, bool need_input, bool need_weight, bool need_bias) {
  ConvGrads r;
  const Tensor gyc = gy.detach().contiguous();
  const Tensor xc = need_weight ? x.detach().contiguous() : Tensor();
  const Tensor wc = need_input ? w.detach().contiguous() : Tensor();
  const Dtype dt = gy.dtype();
  if (need_input) r.input = empty(g.input_shape(), dt);
  if (need_weight) r.weight = empty(g.weight_shape(), dt);
  if (need_bias) r.bias = empty({g.O}, dt);
  dispatch_floating(dt, "conv2d_backward", [&]<class T>() {
    conv_backward<T>(
        g, need_weight ? xc.data_ptr<T>() : nullptr, need_input ? wc.data_ptr<T>() : nullptr,
        gyc.data_ptr<T>(), need_input ? r.input.data_ptr<T>() : nullptr,
        need_weight ? r.weight.data_ptr<T>() : nullptr, need_bias ? r.bias.data_ptr<T>() : nullptr);
  });
  return r;
}

}  // namespace xgrad::detail
