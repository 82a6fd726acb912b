// The process-wide random generator (seeded by manual_seed) and random tensor factories.
#pragma once

#include <cstdint>
#include <random>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Seeds the default generator (torch.manual_seed). Every random factory, initialiser,
/// shuffle and dropout mask draws from it, so the same seed gives the same run.
void manual_seed(std::uint64_t seed);
/// The default generator (a 64-bit Mersenne Twister). Not thread-safe: draw from one thread.
std::mt19937_64& default_generator();

/// Samples from N(0, 1) (Box–Muller through std::normal_distribution), shape as given.
Tensor randn(const Shape& shape, TensorOptions opts = {});
/// Samples uniformly from [0, 1).
Tensor rand(const Shape& shape, TensorOptions opts = {});
/// Samples uniformly from [low, high).
Tensor uniform(const Shape& shape, double low, double high, TensorOptions opts = {});
/// A random permutation of 0..n-1 (int64), by Fisher–Yates on the default generator.
Tensor randperm(std::int64_t n);

}  // namespace xgrad
