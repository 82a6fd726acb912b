// Conversions between Tensor and xtensor's xt::xarray, opt-in: tensor.hpp does not pull
// xtensor into every user's build; include this header where you want the conversions.
// (The umbrella xgrad/xgrad.hpp includes it.)
#pragma once

#include <xtensor/xarray.hpp>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// A new tensor holding a copy of `a`, of the matching dtype (float → float32, double →
/// float64, std::int64_t → int64, bool → boolean), shape a.shape(). Supported T: those four.
template <class T>
Tensor from_xarray(const xt::xarray<T>& a);

/// A copy of t's values as an xt::xarray<T> of t's shape, converted to T when t's dtype
/// differs (as Tensor::to). Throws xgrad::Error for an undefined tensor.
template <class T>
xt::xarray<T> to_xarray(const Tensor& t);

}  // namespace xgrad
