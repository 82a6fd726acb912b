#include "xgrad/random.hpp"

#include <algorithm>
#include <numeric>

namespace xgrad {

std::mt19937_64& default_generator() {
  static std::mt19937_64 gen(0);
  return gen;
}

void manual_seed(std::uint64_t seed) {
  default_generator().seed(seed);
}

namespace {
template <class Dist>
Tensor sample(const Shape& shape, TensorOptions opts, Dist make, const char* op) {
  bool rg = opts.requires_grad_;
  Tensor t = empty(shape, opts.requires_grad(false));
  dispatch_floating(t.dtype(), op, [&]<class T>() {
    auto dist = make(T{});
    auto& gen = default_generator();
    T* p = t.data_ptr<T>();
    for (std::int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = dist(gen);
  });
  if (rg) t.requires_grad_();
  return t;
}
}  // namespace

Tensor randn(const Shape& shape, TensorOptions opts) {
  return sample(
      shape, opts, []<class T>(T) { return std::normal_distribution<T>(T(0), T(1)); }, "randn");
}

Tensor rand(const Shape& shape, TensorOptions opts) {
  return uniform(shape, 0.0, 1.0, opts);
}

Tensor uniform(const Shape& shape, double low, double high, TensorOptions opts) {
  check(low <= high, "uniform: low ", low, " is greater than high ", high);
  return sample(
      shape, opts,
      [low, high]<class T>(T) {
        return std::uniform_real_distribution<T>(static_cast<T>(low), static_cast<T>(high));
      },
      "uniform");
}

Tensor randperm(std::int64_t n) {
  check(n >= 0, "randperm: n must be non-negative, got ", n);
  Tensor t = empty({n}, Dtype::int64);
  std::int64_t* p = t.data_ptr<std::int64_t>();
  std::iota(p, p + n, std::int64_t{0});
  auto& gen = default_generator();
  for (std::int64_t i = n - 1; i > 0; --i) {
    std::uniform_int_distribution<std::int64_t> d(0, i);
    std::swap(p[i], p[d(gen)]);
  }
  return t;
}

}  // namespace xgrad
