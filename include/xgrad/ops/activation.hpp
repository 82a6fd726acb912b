// Activations and the softmax family. Shapes: output shape = input shape; float32/float64.
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// max(a, 0). Gradient 1 where a > 0, 0 where a <= 0 (torch's convention at 0).
Tensor relu(const Tensor& a);
/// a where a > 0, slope·a elsewhere. Gradient at 0 is slope (torch's convention).
Tensor leaky_relu(const Tensor& a, double negative_slope = 0.01);
/// Hyperbolic tangent; gradient 1 - tanh².
Tensor tanh(const Tensor& a);
/// Logistic function 1/(1+e^-a), computed without overflow; gradient s(1-s).
Tensor sigmoid(const Tensor& a);
/// exp(a - max) / Σ exp(a - max) along `axis` (numerically stable for any finite input).
Tensor softmax(const Tensor& a, std::int64_t axis = -1);
/// a - max - log Σ exp(a - max) along `axis`: finite for logits such as [1000, -1000, 0].
Tensor log_softmax(const Tensor& a, std::int64_t axis = -1);

}  // namespace xgrad
