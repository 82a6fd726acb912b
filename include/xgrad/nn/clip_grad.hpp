// Gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_ (torch 1.13).
//
//   loss.backward();
//   xgrad::nn::clip_grad_norm_(model.parameters(), 1.0);  // between backward and step
//   opt.step();
#pragma once

#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::nn {

/// Scales the gradients of `params` (those that have one; the others are skipped) so that
/// their total norm — the norm of all of them concatenated into one vector — is at most
/// max_norm, and returns the total norm *before* clipping. As torch 1.13:
///   n_i   = ‖g_i‖_p for each gradient (in its dtype);  total = ‖(n_1, n_2, …)‖_p
///           (for p = inf: n_i = max|g_i|, total = max n_i)
///   coef  = min(max_norm / (total + 1e-6), 1), computed as torch does in the gradients'
///           dtype (1/(total + 1e-6) · max_norm)
///   g_i  ← g_i · coef   for every gradient, in place (a no-op when coef is 1)
/// A NaN or infinite total therefore makes gradients NaN (or zero), as in torch; check the
/// returned norm if that matters. Sums accumulate in double, so a float32 total can differ
/// from torch's in the last bit. No gradient at all returns 0. norm_type is any p > 0 or
/// +infinity (std::numeric_limits<double>::infinity()). Throws xgrad::Error for a negative or
/// NaN max_norm, or another norm_type.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0);

/// Clamps every element of every gradient of `params` into [−clip_value, clip_value], in
/// place (torch.nn.utils.clip_grad_value_; NaN stays NaN). Throws xgrad::Error for a negative
/// or NaN clip_value.
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace xgrad::nn
