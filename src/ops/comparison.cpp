#include "xgrad/ops/comparison.hpp"

#include <cmath>
#include <type_traits>

#include "detail/kernel.hpp"
#include "xgrad/autograd/batching.hpp"

namespace xgrad {

namespace {

template <class F>
Tensor compare(const Tensor& a, const Tensor& b, const char* op, F f) {
  detail::check_same_dtype(a, b, op);
  return dispatch_all(a.dtype(), [&]<class T>() {
    return detail::map_binary<T, bool>(
        a, b, [f](T x, T y) { return f(x, y); }, op);
  });
}

// Elements of a against the scalar s: in a float tensor's dtype; exactly for an integral s and
// an int64/bool tensor; in double otherwise.
template <class F>
Tensor compare_scalar(const Tensor& a, double s, F f) {
  const Tensor src = a.detach();
  return dispatch_all(src.dtype(), [&]<class T>() {
    if constexpr (std::is_floating_point_v<T>) {
      const T c = static_cast<T>(s);
      return detail::map_unary<T, bool>(src, [f, c](T x) { return f(x, c); });
    } else {
      const bool integral =
          std::trunc(s) == s && s >= -9223372036854775808.0 && s < 9223372036854775808.0;
      if (integral) {
        const auto c = static_cast<std::int64_t>(s);
        return detail::map_unary<T, bool>(
            src, [f, c](T x) { return f(static_cast<std::int64_t>(x), c); });
      }
      return detail::map_unary<T, bool>(src, [f, s](T x) { return f(static_cast<double>(x), s); });
    }
  });
}

constexpr auto kEq = [](auto x, auto y) { return x == y; };
constexpr auto kNe = [](auto x, auto y) { return x != y; };
constexpr auto kLt = [](auto x, auto y) { return x < y; };
constexpr auto kLe = [](auto x, auto y) { return x <= y; };
constexpr auto kGt = [](auto x, auto y) { return x > y; };
constexpr auto kGe = [](auto x, auto y) { return x >= y; };

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("eq", {a, b}, autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return eq(x, y); }));
  return compare(a, b, "eq", kEq);
}
Tensor ne(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("ne", {a, b}, autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return ne(x, y); }));
  return compare(a, b, "ne", kNe);
}
Tensor lt(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("lt", {a, b}, autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return lt(x, y); }));
  return compare(a, b, "lt", kLt);
}
Tensor le(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("le", {a, b}, autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return le(x, y); }));
  return compare(a, b, "le", kLe);
}
Tensor gt(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("gt", {a, b}, autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return gt(x, y); }));
  return compare(a, b, "gt", kGt);
}
Tensor ge(const Tensor& a, const Tensor& b) {
  if (autograd::any_batched(a, b))
    return autograd::vmap_op("ge", {a, b}, autograd::elementwise_rule([](const Tensor& x, const Tensor& y) { return ge(x, y); }));
  return compare(a, b, "ge", kGe);
}

Tensor eq(const Tensor& a, double b) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("eq", {a}, [b](const autograd::BatchedArgs& p) { return eq(p[0], b); });
  return compare_scalar(a, b, kEq);
}
Tensor ne(const Tensor& a, double b) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("ne", {a}, [b](const autograd::BatchedArgs& p) { return ne(p[0], b); });
  return compare_scalar(a, b, kNe);
}
Tensor lt(const Tensor& a, double b) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("lt", {a}, [b](const autograd::BatchedArgs& p) { return lt(p[0], b); });
  return compare_scalar(a, b, kLt);
}
Tensor le(const Tensor& a, double b) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("le", {a}, [b](const autograd::BatchedArgs& p) { return le(p[0], b); });
  return compare_scalar(a, b, kLe);
}
Tensor gt(const Tensor& a, double b) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("gt", {a}, [b](const autograd::BatchedArgs& p) { return gt(p[0], b); });
  return compare_scalar(a, b, kGt);
}
Tensor ge(const Tensor& a, double b) {
  if (autograd::any_batched(a))
    return autograd::vmap_op("ge", {a}, [b](const autograd::BatchedArgs& p) { return ge(p[0], b); });
  return compare_scalar(a, b, kGe);
}

// ---- operators -----------------------------------------------------------------------------

Tensor operator==(const Tensor& a, const Tensor& b) {
  return eq(a, b);
}
Tensor operator!=(const Tensor& a, const Tensor& b) {
  return ne(a, b);
}
Tensor operator<(const Tensor& a, const Tensor& b) {
  return lt(a, b);
}
Tensor operator<=(const Tensor& a, const Tensor& b) {
  return le(a, b);
}
Tensor operator>(const Tensor& a, const Tensor& b) {
  return gt(a, b);
}
Tensor operator>=(const Tensor& a, const Tensor& b) {
  return ge(a, b);
}
Tensor operator==(const Tensor& a, double b) {
  return eq(a, b);
}
Tensor operator!=(const Tensor& a, double b) {
  return ne(a, b);
}
Tensor operator<(const Tensor& a, double b) {
  return lt(a, b);
}
Tensor operator<=(const Tensor& a, double b) {
  return le(a, b);
}
Tensor operator>(const Tensor& a, double b) {
  return gt(a, b);
}
Tensor operator>=(const Tensor& a, double b) {
  return ge(a, b);
}
Tensor operator==(double a, const Tensor& b) {
  return eq(b, a);
}
Tensor operator!=(double a, const Tensor& b) {
  return ne(b, a);
}
Tensor operator<(double a, const Tensor& b) {
  return gt(b, a);
}
Tensor operator<=(double a, const Tensor& b) {
  return ge(b, a);
}
Tensor operator>(double a, const Tensor& b) {
  return lt(b, a);
}
Tensor operator>=(double a, const Tensor& b) {
  return le(b, a);
}

}  // namespace xgrad#include "xgrad/autograd/batching.hpp"

