// The in-place ops of Tensor (add_, mul_, copy_, fill_, ...): what optimizers and
// initialisers use under no_grad. They are not recorded by autograd; they bump the storage's
// version, so backward refuses a saved tensor they changed.
#include "xgrad/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>

#include "detail/kernel.hpp"
#include "xgrad/autograd/engine.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"

namespace xgrad {

namespace {
// In-place ops are not recorded: refuse them where the graph would silently go wrong. Also
// refuse, with or without grad mode, a target in which several elements share one memory
// location (a dimension of size > 1 with stride 0, as expand() makes): every write would land
// on the same element and only the last one would stay (torch's assert_no_internal_overlap).
void check_inplace(const Tensor& self, const char* op, const Tensor* other = nullptr,
                   const Tensor* other2 = nullptr) {
  for (std::size_t i = 0; i < self.shape().size(); ++i)
    if (self.shape()[i] > 1 && self.strides()[i] == 0)
      fail(op, ": unsupported operation: more than one element of the written-to tensor refers ",
           "to a single memory location (a broadcast view of shape ", self.shape(),
           " with strides ", self.strides(), "); write into a clone() or contiguous() copy");
  if (!is_grad_enabled()) return;
  bool rg = self.requires_grad() || (other && other->defined() && other->requires_grad()) ||
            (other2 && other2->defined() && other2->requires_grad());
  if (rg)
    fail(op, ": in-place ops are not recorded by autograd; on a tensor that requires grad (",
         self.shape(), ") use them under xgrad::no_grad, or use the out-of-place op");
}

template <class F>
Tensor& inplace_binary(Tensor& self, const Tensor& other, const char* op, F f) {
  check_inplace(self, op, &other);
  detail::check_same_dtype(self, other, op);
  dispatch_floating(self.dtype(), op,
                    [&]<class T>() { detail::apply_inplace<T>(self, other, f(T{}), op); });
  self.storage()->bump_version();
  return self;
}

template <class F>
Tensor& inplace_unary(Tensor& self, const char* op, F f) {
  check_inplace(self, op);
  dispatch_floating(self.dtype(), op, [&]<class T>() {
    auto fn = f(T{});
    if (self.is_contiguous()) {
      T* p = self.data_ptr<T>();
      for (std::int64_t i = 0, n = self.numel(); i < n; ++i) p[i] = fn(p[i]);
    } else {
      auto v = detail::xview<T>(self);
      xt::xarray<T> tmp = xt::make_lambda_xfunction(decltype(fn)(fn), v);
      xt::noalias(v) = tmp;
    }
  });
  self.storage()->bump_version();
  return self;
}
}  // namespace

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  return inplace_binary(*this, other, "add_", [alpha]<class T>(T) {
    const T a = static_cast<T>(alpha);
    return [a](T s, T o) { return a == T(1) ? s + o : std::fma(a, o, s); };
  });
}
Tensor& Tensor::sub_(const Tensor& other, double alpha) {
  return inplace_binary(*this, other, "sub_", [alpha]<class T>(T) {
    const T a = static_cast<T>(-alpha);
    return [a](T s, T o) { return a == T(-1) ? s - o : std::fma(a, o, s); };
  });
}
Tensor& Tensor::mul_(const Tensor& other) {
  return inplace_binary(*this, other, "mul_",
                        []<class T>(T) { return [](T s, T o) { return s * o; }; });
}
Tensor& Tensor::div_(const Tensor& other) {
  return inplace_binary(*this, other, "div_",
                        []<class T>(T) { return [](T s, T o) { return s / o; }; });
}
Tensor& Tensor::add_(double scalar) {
  return inplace_unary(*this, "add_", [scalar]<class T>(T) {
    const T c = static_cast<T>(scalar);
    return [c](T s) { return s + c; };
  });
}
Tensor& Tensor::mul_(double scalar) {
  return inplace_unary(*this, "mul_", [scalar]<class T>(T) {
    const T c = static_cast<T>(scalar);
    return [c](T s) { return s * c; };
  });
}
Tensor& Tensor::div_(double scalar) {
  return inplace_unary(*this, "div_", [scalar]<class T>(T) {
    const T c = static_cast<T>(scalar);
    return [c](T s) { return s / c; };
  });
}
Tensor& Tensor::sqrt_() {
  return inplace_unary(*this, "sqrt_", []<class T>(T) { return [](T s) { return std::sqrt(s); }; });
}
Tensor& Tensor::maximum_(const Tensor& other) {
  return inplace_binary(*this, other, "maximum_", []<class T>(T) {
    return [](T s, T o) { return (s < o || std::isnan(o)) ? o : s; };
  });
}

namespace {
template <class F>
Tensor& inplace_ternary(Tensor& self, const Tensor& t1, const Tensor& t2, const char* op, F f) {
  check_inplace(self, op, &t1, &t2);
  detail::check_same_dtype(self, t1, op);
  detail::check_same_dtype(self, t2, op);
  dispatch_floating(self.dtype(), op, [&]<class T>() {
    auto fn = f(T{});
    if (t1.shape() == self.shape() && t2.shape() == self.shape() && self.is_contiguous() &&
        t1.is_contiguous() && t2.is_contiguous()) {
      T* s = self.data_ptr<T>();
      const T* a = t1.data_ptr<T>();
      const T* b = t2.data_ptr<T>();
      for (std::int64_t i = 0, n = self.numel(); i < n; ++i) s[i] = fn(s[i], a[i], b[i]);
    } else {
      Shape shape = detail::broadcast_shapes(
          self.shape(), detail::broadcast_shapes(t1.shape(), t2.shape(), op), op);
      if (shape != self.shape())
        fail(op, ": cannot broadcast ", t1.shape(), " and ", t2.shape(),
             " into the in-place target's shape ", self.shape());
      auto vs = detail::xview<T>(self);
      auto va = detail::xview<T>(detail::broadcast_view(t1, shape));
      auto vb = detail::xview<T>(detail::broadcast_view(t2, shape));
      xt::xarray<T> tmp = xt::make_lambda_xfunction(decltype(fn)(fn), vs, va, vb);
      xt::noalias(vs) = tmp;
    }
  });
  self.storage()->bump_version();
  return self;
}
}  // namespace

Tensor& Tensor::addcmul_(const Tensor& t1, const Tensor& t2, double value) {
  return inplace_ternary(*this, t1, t2, "addcmul_", [value]<class T>(T) {
    const T v = static_cast<T>(value);
    return [v](T s, T a, T b) { return std::fma(v * a, b, s); };
  });
}
Tensor& Tensor::addcdiv_(const Tensor& t1, const Tensor& t2, double value) {
  return inplace_ternary(*this, t1, t2, "addcdiv_", [value]<class T>(T) {
    const T v = static_cast<T>(value);
    return [v](T s, T a, T b) { return s + (v * a) / b; };
  });
}

Tensor& Tensor::zero_() {
  check_inplace(*this, "zero_");
  if (is_contiguous()) {
    std::memset(raw_data(), 0, static_cast<std::size_t>(numel()) * element_size(dtype()));
    storage()->bump_version();
    return *this;
  }
  return fill_(0.0);
}

Tensor& Tensor::fill_(double value) {
  check_inplace(*this, "fill_");
  dispatch_all(dtype(), [&]<class T>() {
    const T c = static_cast<T>(value);
    detail::for_each_element<T>(*this, [c](T& x) { x = c; });
  });
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_", &src);
  Tensor s = src.dtype() == dtype() ? src : src.detach().to(dtype());
  Shape shape = detail::broadcast_shapes(this->shape(), s.shape(), "copy_");
  if (shape != this->shape())
    fail("copy_: cannot broadcast ", src.shape(), " into the target's shape ", this->shape());
  dispatch_all(dtype(), [&]<class T>() {
    if (is_contiguous() && s.is_contiguous() && s.shape() == this->shape() &&
        s.storage() != storage()) {
      std::copy_n(s.data_ptr<T>(), numel(), data_ptr<T>());
    } else {
      auto v = detail::xview<T>(*this);
      xt::xarray<T> tmp = detail::xview<T>(detail::broadcast_view(s, shape));
      xt::noalias(v) = tmp;
    }
  });
  storage()->bump_version();
  return *this;
}

}  // namespace xgrad
