// Internal helpers for kernels: xtensor views of a tensor's memory and elementwise loops.
// Not installed; included only by src/ files, so xtensor expressions stay out of public headers.
#pragma once

#include <cstddef>
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "detail/cpu.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::detail {

/// A (possibly strided) xtensor view of t's memory, without ownership. Dimensions of size 1
/// get stride 0, as xtensor's broadcasting expects. The adaptor's nominal buffer size is
/// numel (xtensor insists on it); element access goes through the strides, so views that
/// span more (slices with a step) or less (broadcast, stride 0) memory work.
template <class T>
auto xview(const Tensor& t) {
  const auto& sh = t.shape();
  const auto& st = t.strides();
  xt::svector<std::size_t, 4> shape(sh.size());
  xt::svector<std::ptrdiff_t, 4> strides(sh.size());
  for (std::size_t i = 0; i < sh.size(); ++i) {
    shape[i] = static_cast<std::size_t>(sh[i]);
    strides[i] = sh[i] == 1 ? 0 : static_cast<std::ptrdiff_t>(st[i]);
  }
  return xt::adapt(t.data_ptr<T>(), static_cast<std::size_t>(t.numel()), xt::no_ownership(), shape,
                   strides);
}

/// Calls f(T&) on every element of a (possibly strided) tensor in row-major order, walking
/// the strides with an index counter (xtensor's iterators on strided adaptors assume a
/// contiguous buffer, so views use this).
template <class T, class F>
void for_each_element(const Tensor& t, F f) {
  const std::int64_t n = t.numel();
  if (n == 0) return;
  T* base = t.data_ptr<T>();
  if (t.is_contiguous()) {
    for (std::int64_t i = 0; i < n; ++i) f(base[i]);
    return;
  }
  const Shape& shape = t.shape();
  const Shape& strides = t.strides();
  const std::size_t nd = shape.size();
  std::vector<std::int64_t> idx(nd, 0);
  std::int64_t off = 0;
  for (std::int64_t k = 0; k < n; ++k) {
    f(base[off]);
    for (std::size_t d = nd; d-- > 0;) {
      if (++idx[d] < shape[d]) {
        off += strides[d];
        break;
      }
      off -= (shape[d] - 1) * strides[d];
      idx[d] = 0;
    }
  }
}

/// A shape seen around one axis as [outer, n, inner]: the product of the sizes before the
/// axis, its size, and the product after it. A contiguous tensor of that shape holds element
/// (o, k, i) at (o·n + k)·inner + i, which is how the kernels that work along one axis walk it.
struct AxisSplit {
  std::int64_t outer = 1, n = 1, inner = 1;
};

inline AxisSplit split_axis(const Shape& shape, std::int64_t axis) {
  AxisSplit s;
  const auto ax = static_cast<std::size_t>(axis);
  for (std::size_t i = 0; i < ax; ++i) s.outer *= shape[i];
  s.n = shape[ax];
  for (std::size_t i = ax + 1; i < shape.size(); ++i) s.inner *= shape[i];
  return s;
}

/// NumPy broadcasting of two shapes; throws "op: shapes [..] and [..] cannot be broadcast".
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

/// Normalises a possibly negative axis for a tensor of `ndim` dims; throws
/// "op: axis 3 is out of range for a tensor of shape [2,3]".
std::int64_t normalize_axis(std::int64_t axis, std::int64_t ndim, const Shape& shape,
                            const char* op);

/// Throws "op: expected tensors of the same dtype, got float32 and float64".
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op);

/// A tensor with `t`'s values broadcast to `shape` as a strided view (stride 0 on broadcast
/// dims). No copy; read-only use.
Tensor broadcast_view(const Tensor& t, const Shape& shape);

/// out[i] = f(a[i]) into a new contiguous tensor of a's shape (a made contiguous first).
// The contiguous loops of map_unary, map_binary and apply_inplace, compiled twice (run-time
// dispatch, detail/cpu.hpp): as is, and in an XGRAD_TARGET_AVX2 wrapper that GCC vectorises
// with 8 float lanes. The op's lambda reaches the wrapper by value: through a reference GCC
// cannot prove that the stores leave its captures alone and keeps the loop scalar
// (docs/performance.md). Both variants round the same (-ffp-contract=off, no fast-math).
template <class In, class R, class F>
[[gnu::always_inline]] inline void unary_loop(const In* in, R* o, std::int64_t n, F f) {
  for (std::int64_t i = 0; i < n; ++i) o[i] = f(in[i]);
}
template <class In, class R, class F>
XGRAD_TARGET_AVX2 void unary_loop_avx2(const In* in, R* o, std::int64_t n, F f) {
  unary_loop(in, o, n, f);
}
/// o[i] = f(in[i]) for i < n, in the variant chosen at start-up.
template <class In, class R, class F>
void run_unary(const In* in, R* o, std::int64_t n, F f) {
  if (use_avx2()) return unary_loop_avx2(in, o, n, f);
  unary_loop(in, o, n, f);
}

template <class T, class R, class F>
[[gnu::always_inline]] inline void binary_loop(const T* a, const T* b, R* o, std::int64_t n, F f) {
  for (std::int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
}
template <class T, class R, class F>
XGRAD_TARGET_AVX2 void binary_loop_avx2(const T* a, const T* b, R* o, std::int64_t n, F f) {
  binary_loop(a, b, o, n, f);
}
/// o[i] = f(a[i], b[i]) for i < n (o may be a: in place), in the variant chosen at start-up.
template <class T, class R, class F>
void run_binary(const T* a, const T* b, R* o, std::int64_t n, F f) {
  if (use_avx2()) return binary_loop_avx2(a, b, o, n, f);
  binary_loop(a, b, o, n, f);
}

template <class T, class R = T, class F>
Tensor map_unary(const Tensor& a, F f) {
  Tensor src = a.contiguous();
  Tensor out = empty(a.shape(), dtype_of<R>);
  const T* in = src.data_ptr<T>();
  R* o = out.data_ptr<R>();
  run_unary(in, o, a.numel(), f);
  return out;
}

/// out = f(a, b) with broadcasting, into a new contiguous tensor of the broadcast shape.
template <class T, class R = T, class F>
Tensor map_binary(const Tensor& a, const Tensor& b, F f, const char* op) {
  if (a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous()) {
    Tensor out = empty(a.shape(), dtype_of<R>);
    const T* pa = a.data_ptr<T>();
    const T* pb = b.data_ptr<T>();
    R* o = out.data_ptr<R>();
    run_binary(pa, pb, o, a.numel(), f);
    return out;
  }
  Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = empty(shape, dtype_of<R>);
  if (b.numel() == 1 && a.is_contiguous() && a.shape() == shape) {
    const T* pa = a.data_ptr<T>();
    const T vb = *b.data_ptr<T>();
    R* o = out.data_ptr<R>();
    run_unary(pa, o, out.numel(), [f, vb](T x) { return f(x, vb); });
    return out;
  }
  if (a.numel() == 1 && b.is_contiguous() && b.shape() == shape) {
    const T va = *a.data_ptr<T>();
    const T* pb = b.data_ptr<T>();
    R* o = out.data_ptr<R>();
    run_unary(pb, o, out.numel(), [f, va](T y) { return f(va, y); });
    return out;
  }
  auto vo = xview<R>(out);
  auto va = xview<T>(a);
  auto vb = xview<T>(b);
  xt::noalias(vo) = xt::make_lambda_xfunction(F(f), va, vb);
  return out;
}

/// In-place self[i] = f(self[i], other[i]) with `other` broadcast to self's shape.
template <class T, class F>
void apply_inplace(const Tensor& self, const Tensor& other, F f, const char* op) {
  if (other.shape() == self.shape() && self.is_contiguous() && other.is_contiguous()) {
    T* s = self.data_ptr<T>();
    const T* p = other.data_ptr<T>();
    run_binary(static_cast<const T*>(s), p, s, self.numel(), f);
    return;
  }
  Shape shape = broadcast_shapes(self.shape(), other.shape(), op);
  if (shape != self.shape())
    fail(op, ": cannot broadcast ", other.shape(), " into the in-place target's shape ",
         self.shape());
  auto vs = xview<T>(self);
  auto vp = xview<T>(broadcast_view(other, shape));
  xt::xarray<T> tmp = xt::make_lambda_xfunction(F(f), vs, vp);
  xt::noalias(vs) = tmp;
}

}  // namespace xgrad::detail
