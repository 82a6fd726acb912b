// One-hot encoding (torch.nn.functional.one_hot).
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// out[..., c] = 1 where indices[...] == c, else 0. num_classes = -1 takes max(indices) + 1
/// (0 classes for an empty input, as torch). Not differentiable (integer in, integer out).
/// Shapes: indices [...] int64 -> [..., num_classes] int64.
/// Throws for a non-int64 input, a negative index or one >= num_classes ("one_hot: index 5 is
/// out of range for num_classes 3"), or num_classes < -1.
Tensor one_hot(const Tensor& indices, std::int64_t num_classes = -1);

}  // namespace xgrad
