// Loss functions, each with reduction mean (default) | sum | none, as torch.nn.functional.
// Shapes are checked, never broadcast silently: a loss whose input and target shapes differ
// throws, e.g. "mse_loss: input [64,10] and target [64] must have the same shape".
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Mean squared error (input - target)². input and target: same shape, same float dtype.
/// Reduction none returns the per-element losses (input's shape); mean divides by numel.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);

/// Cross-entropy of logits [N,C] against integer class labels [N] (int64, each in [0,C)):
/// loss_i = logsumexp(x_i) - x_i[label_i], computed through a stable log_softmax. Reduction
/// none returns [N]; mean divides by N. Throws for a label out of range (naming it and its
/// position), wrong ranks or a batch-size mismatch.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels,
                     Reduction reduction = Reduction::mean);

/// Binary cross-entropy of logits x against targets y in [0,1] (same shape), in the stable
/// form max(x,0) - x·y + log(1 + e^-|x|): logit 100 with label 0 gives 100, not inf.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction reduction = Reduction::mean);

}  // namespace xgrad
