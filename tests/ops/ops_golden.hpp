// The golden files of tests/data/ops_golden/ (written by tools/make_ops_golden.py with
// python3-torch): torch's values and gradients for the losses, norm, amax/amin and hardtanh
// (format: tests/golden_file.hpp).
#pragma once

#include <string>
#include <vector>

#include "golden_file.hpp"

namespace xgrad::testing {

/// Reads tests/data/ops_golden/`file`.
inline std::vector<GoldenCase> read_ops_golden(const std::string& file) {
  return read_golden_file("ops_golden", file);
}

/// The tolerance of the golden comparisons: 1e-12 in float64, relative 1e-6 in float32 (the
/// inputs are float32 numbers, so only the float32 arithmetic differs).
inline double ops_golden_tol(Dtype d) {
  return d == float64 ? 1e-12 : 1e-6;
}

}  // namespace xgrad::testing
