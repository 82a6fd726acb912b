#include "xgrad/xtensor.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "detail/kernel.hpp"

namespace xgrad {

template <class T>
Tensor from_xarray(const xt::xarray<T>& a) {
  Shape shape(a.shape().begin(), a.shape().end());
  Tensor t = empty(shape, dtype_of<T>);
  auto v = detail::xview<T>(t);
  xt::noalias(v) = a;
  return t;
}

template <class T>
xt::xarray<T> to_xarray(const Tensor& t) {
  check(t.defined(), "to_xarray: the tensor is undefined");
  Tensor src = t.dtype() == dtype_of<T> ? t.contiguous() : t.to(dtype_of<T>);
  std::vector<std::size_t> sh(src.shape().begin(), src.shape().end());
  xt::xarray<T> out(sh);
  std::copy_n(src.data_ptr<T>(), src.numel(), out.data());
  return out;
}

template Tensor from_xarray(const xt::xarray<float>&);
template Tensor from_xarray(const xt::xarray<double>&);
template Tensor from_xarray(const xt::xarray<std::int64_t>&);
template Tensor from_xarray(const xt::xarray<bool>&);
template xt::xarray<float> to_xarray<float>(const Tensor&);
template xt::xarray<double> to_xarray<double>(const Tensor&);
template xt::xarray<std::int64_t> to_xarray<std::int64_t>(const Tensor&);
template xt::xarray<bool> to_xarray<bool>(const Tensor&);

}  // namespace xgrad
