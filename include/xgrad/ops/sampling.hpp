// Sampling from categorical distributions (torch.multinomial).
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad {

/// Draws num_samples category indices per row, category i with probability
/// probs[i] / Σ probs (the weights need not sum to 1), from xgrad::default_generator(): the
/// same manual_seed gives the same samples. replacement = false draws without replacement
/// (each draw renormalises over the categories not yet taken), so num_samples must not exceed
/// the number of categories with nonzero weight. Each draw is one uniform u ∈ [0, 1) scaled by
/// the remaining total and located by inverse CDF over the row (float64 accumulation); a
/// category of weight 0 is never drawn. Not differentiable. The draws are not torch's (its CPU
/// generator and algorithm differ); their distribution is.
/// Shapes: probs [C] or [N, C] float32/float64 -> [num_samples] or [N, num_samples] int64.
/// Throws for another rank, a negative, NaN or infinite weight, a row of zero total,
/// num_samples <= 0, or num_samples greater than the nonzero categories without replacement
/// ("multinomial: cannot draw 4 samples without replacement from 3 categories with nonzero
/// probability").
Tensor multinomial(const Tensor& probs, std::int64_t num_samples, bool replacement = false);

}  // namespace xgrad
