// Loss functions, each with reduction mean (default) | sum | none, as torch.nn.functional.
// Shapes are checked, never broadcast silently: a loss whose input and target shapes differ
// throws, e.g. "mse_loss: input [64,10] and target [64] must have the same shape".
// Each loss is differentiable to any order in its float inputs (backward with create_graph,
// forward mode): the first-order backward reuses the derivative the forward kernel computed,
// and a recorded backward recomputes it with xgrad ops (same values).
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Mean squared error (input - target)². input and target: same shape, same float dtype.
/// Reduction none returns the per-element losses (input's shape); mean divides by numel.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);

/// Cross-entropy of logits [N,C] against integer class labels [N] (int64, each in [0,C)), as
/// torch.nn.functional.cross_entropy: loss_i = −log_softmax(x_i)[label_i], computed as
/// (max_k x_ik − x_i[label_i]) + log Σ_k exp(x_ik − max): the difference first, so that
/// [[1e8, 1e8]] gives log 2 in float32 too (max + log Σ − x[label] cancels to 0 there).
/// Reduction none returns [N]; mean divides by N. Throws for a label out of range (naming it
/// and its position), wrong ranks or a batch-size mismatch.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels,
                     Reduction reduction = Reduction::mean);

/// The options of cross_entropy, named and defaulted as torch's arguments; with C++20
/// designated initializers: cross_entropy(x, y, {.ignore_index = 0, .label_smoothing = 0.1}).
struct CrossEntropyOptions {
  /// Rescaling weight of each class, [C], the logits' dtype; undefined: all 1. Gets no
  /// gradient (as torch).
  Tensor weight{};
  /// Rows whose label equals it add 0 to the loss and to every gradient, and are not counted
  /// by mean. It may lie outside [0, C).
  std::int64_t ignore_index = -100;
  Reduction reduction = Reduction::mean;
  /// ε in [0, 1]: the target becomes (1 − ε)·one_hot(label) + ε/C (torch 1.13).
  double label_smoothing = 0.0;
};

/// Cross-entropy with class weights, ignore_index and label smoothing, torch 1.13's semantics.
/// With w = weight (all 1 when undefined), ε = label_smoothing, l = −log_softmax(x_i):
///   loss_i = (1 − ε)·w[y_i]·l[y_i] + ε/C · Σ_k w[k]·l[k]    (0 where y_i = ignore_index)
/// Reduction none returns [N] (0 at ignored rows); sum adds them; mean divides the sum by
/// Σ w[y_i] over the rows not ignored (the number of those rows without weights) — NaN when
/// every row is ignored, with gradient 0, as torch. Gradient:
///   (1 − ε)·w[y]·(softmax(x_i) − one_hot(y)) + ε/C·(Σw·softmax(x_i) − w).
/// Second derivative (create_graph): row i's Hessian w.r.t. its logits is
/// a_i·(diag(p) − ppᵀ), a_i = (1 − ε)·w[y_i] + ε/C·Σw (0 for an ignored row), divided like the
/// loss for mean — (diag(p) − ppᵀ)/N without options.
/// Throws as the overload above, and for a weight whose shape is not [C] ("cross_entropy:
/// expected a weight of shape [3] (one per class), got [2]") or dtype differs, and for
/// label_smoothing outside [0, 1].
Tensor cross_entropy(const Tensor& logits, const Tensor& labels,
                     const CrossEntropyOptions& options);

/// Binary cross-entropy of probabilities x in [0,1] against targets y in [0,1] (same shape),
/// as torch.nn.functional.binary_cross_entropy: loss = −w·(y·log x + (1 − y)·log(1 − x)) with
/// each log clamped at −100, so x = 0 or 1 gives at most 100·w, never inf. `weight`
/// (optional, the input's dtype) broadcasts to the input's shape and gets no gradient.
/// Gradients as torch's kernel: d/dx = w·(x − y)/max(x(1 − x), 1e-12); d/dy = w·(log(1 − x) −
/// log x) with the clamped logs (torch's −logit(x) is unclamped: they differ only where x or
/// 1 − x is below e^-100). Reduction none returns the input's shape; mean divides by numel.
/// Throws for differing shapes or dtypes, a weight that does not broadcast, and an input or
/// target outside [0, 1] (naming the value and its position), as torch.
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target,
                            const Tensor& weight = Tensor(), Reduction reduction = Reduction::mean);
/// binary_cross_entropy without weights.
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction);

/// Binary cross-entropy of logits x against targets y in [0,1] (same shape), in the stable
/// form max(x,0) - x·y + log(1 + e^-|x|): logit 100 with label 0 gives 100, not inf.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction reduction = Reduction::mean);

}  // namespace xgrad
