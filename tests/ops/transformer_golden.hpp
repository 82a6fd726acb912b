// The golden files of tests/data/transformer_golden/ (written by
// tools/make_transformer_ops_golden.py with python3-torch 1.13): torch's values and gradients
// for layer_norm, var/std, masked_fill, triu/tril, topk and attention (format:
// tests/golden_file.hpp).
#pragma once

#include <string>
#include <vector>

#include "golden_file.hpp"

namespace xgrad::testing {

/// Reads tests/data/transformer_golden/`file`.
inline std::vector<GoldenCase> read_transformer_golden(const std::string& file) {
  return read_golden_file("transformer_golden", file);
}

/// The tolerances: 1e-10 in float64, 1e-5 (relative to max(1, |ref|)) in float32.
inline double transformer_tol(Dtype d) {
  return d == float64 ? 1e-10 : 1e-5;
}

/// d sum(out·grad_output) / d inputs, in the inputs' dtype (those that require grad).
inline std::vector<Tensor> grads_of(const Tensor& out, const Tensor& grad_output,
                                    const std::vector<Tensor>& inputs) {
  return grad({sum(mul(out, grad_output))}, inputs);
}

}  // namespace xgrad::testing
