// Method forms of the free-function ops (x.sum(), x.reshape(...)), as torch offers both, and
// the compound assignment operators (x += y is x.add_(y)).
#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/elementwise.hpp"
#include "xgrad/ops/linalg.hpp"
#include "xgrad/ops/reduction.hpp"
#include "xgrad/ops/shape.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad {

Tensor Tensor::reshape(const Shape& s) const {
  return xgrad::reshape(*this, s);
}
Tensor Tensor::view(const Shape& s) const {
  return xgrad::view(*this, s);
}
Tensor Tensor::transpose(std::int64_t a, std::int64_t b) const {
  return xgrad::transpose(*this, a, b);
}
Tensor Tensor::permute(const Shape& dims) const {
  return xgrad::permute(*this, dims);
}
Tensor Tensor::flatten(std::int64_t start, std::int64_t end) const {
  return xgrad::flatten(*this, start, end);
}
Tensor Tensor::squeeze(std::int64_t axis) const {
  return xgrad::squeeze(*this, axis);
}
Tensor Tensor::unsqueeze(std::int64_t axis) const {
  return xgrad::unsqueeze(*this, axis);
}
Tensor Tensor::t() const {
  check(dim() == 2, "t: expected a 2-D tensor, got shape ", shape());
  return xgrad::transpose(*this, 0, 1);
}
Tensor Tensor::sum() const {
  return xgrad::sum(*this);
}
Tensor Tensor::sum(std::int64_t axis, bool keepdim) const {
  return xgrad::sum(*this, axis, keepdim);
}
Tensor Tensor::mean() const {
  return xgrad::mean(*this);
}
Tensor Tensor::mean(std::int64_t axis, bool keepdim) const {
  return xgrad::mean(*this, axis, keepdim);
}
Tensor Tensor::max() const {
  return xgrad::max(*this);
}
Tensor Tensor::max(std::int64_t axis, bool keepdim) const {
  return xgrad::max(*this, axis, keepdim);
}
Tensor Tensor::matmul(const Tensor& other) const {
  return xgrad::matmul(*this, other);
}
Tensor Tensor::exp() const {
  return xgrad::exp(*this);
}
Tensor Tensor::log() const {
  return xgrad::log(*this);
}
Tensor Tensor::sqrt() const {
  return xgrad::sqrt(*this);
}
Tensor Tensor::abs() const {
  return xgrad::abs(*this);
}
Tensor Tensor::sign() const {
  return xgrad::sign(*this);
}
Tensor Tensor::tanh() const {
  return xgrad::tanh(*this);
}
Tensor Tensor::sigmoid() const {
  return xgrad::sigmoid(*this);
}
Tensor Tensor::relu() const {
  return xgrad::relu(*this);
}
Tensor Tensor::pow(double exponent) const {
  return xgrad::pow(*this, exponent);
}

// ---- compound assignment: the in-place ops ------------------------------------------------

Tensor& Tensor::operator+=(const Tensor& other) {
  return add_(other);
}
Tensor& Tensor::operator+=(double scalar) {
  return add_(scalar);
}
Tensor& Tensor::operator-=(const Tensor& other) {
  return sub_(other);
}
Tensor& Tensor::operator-=(double scalar) {
  return add_(-scalar);
}
Tensor& Tensor::operator*=(const Tensor& other) {
  return mul_(other);
}
Tensor& Tensor::operator*=(double scalar) {
  return mul_(scalar);
}
Tensor& Tensor::operator/=(const Tensor& other) {
  return div_(other);
}
Tensor& Tensor::operator/=(double scalar) {
  return div_(scalar);
}

}  // namespace xgrad
