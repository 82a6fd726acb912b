#include "xgrad/nn/init.hpp"

#include <cmath>
#include <random>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/random.hpp"

namespace xgrad::nn::init {

namespace {
template <class Dist>
Tensor& fill_random(Tensor& t, Dist make, const char* op) {
  no_grad guard;
  Tensor c = t.contiguous();
  check(c.storage() == t.storage(), op, ": needs a contiguous tensor, got strides ", t.strides());
  dispatch_floating(t.dtype(), op, [&]<class T>() {
    auto dist = make(T{});
    auto& gen = default_generator();
    T* p = t.data_ptr<T>();
    for (std::int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = dist(gen);
  });
  t.storage()->bump_version();
  return t;
}
}  // namespace

Tensor& normal_(Tensor& t, double mean, double std) {
  return fill_random(
      t, [=]<class T>(T) { return std::normal_distribution<T>(T(mean), T(std)); }, "normal_");
}

Tensor& uniform_(Tensor& t, double a, double b) {
  return fill_random(
      t, [=]<class T>(T) { return std::uniform_real_distribution<T>(T(a), T(b)); }, "uniform_");
}

Tensor& zeros_(Tensor& t) {
  no_grad guard;
  t.zero_();
  return t;
}

Tensor& constant_(Tensor& t, double value) {
  no_grad guard;
  t.fill_(value);
  return t;
}

double calculate_gain(const std::string& nl, double param) {
  if (nl == "linear" || nl == "sigmoid" || nl == "identity" || nl.rfind("conv", 0) == 0) return 1.0;
  if (nl == "tanh") return 5.0 / 3.0;
  if (nl == "relu") return std::sqrt(2.0);
  if (nl == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nl == "selu") return 3.0 / 4.0;
  fail("calculate_gain: unknown nonlinearity '", nl, "'");
}

std::pair<double, double> fans(const Tensor& t) {
  check(t.dim() >= 2, "init: fan in and fan out need a tensor with at least 2 dimensions, got ",
        t.shape());
  double receptive = 1;
  for (std::int64_t i = 2; i < t.dim(); ++i) receptive *= static_cast<double>(t.shape()[i]);
  return {static_cast<double>(t.shape()[1]) * receptive,
          static_cast<double>(t.shape()[0]) * receptive};
}

Tensor& xavier_uniform_(Tensor& t, double gain) {
  auto [fi, fo] = fans(t);
  const double a = gain * std::sqrt(6.0 / (fi + fo));
  return uniform_(t, -a, a);
}

Tensor& xavier_normal_(Tensor& t, double gain) {
  auto [fi, fo] = fans(t);
  return normal_(t, 0.0, gain * std::sqrt(2.0 / (fi + fo)));
}

Tensor& kaiming_uniform_(Tensor& t, double a, FanMode mode, const std::string& nonlinearity) {
  auto [fi, fo] = fans(t);
  const double fan = mode == FanMode::fan_in ? fi : fo;
  const double bound = calculate_gain(nonlinearity, a) * std::sqrt(3.0 / fan);
  return uniform_(t, -bound, bound);
}

Tensor& kaiming_normal_(Tensor& t, double a, FanMode mode, const std::string& nonlinearity) {
  auto [fi, fo] = fans(t);
  const double fan = mode == FanMode::fan_in ? fi : fo;
  return normal_(t, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(fan));
}

}  // namespace xgrad::nn::init
