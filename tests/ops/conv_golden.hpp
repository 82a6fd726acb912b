// The golden files of tests/data/conv_golden/ (written by tools/make_conv_golden.py with
// python3-torch), read by conv_test and pool_test (format: tests/golden_file.hpp).
#pragma once

#include <string>
#include <vector>

#include "golden_file.hpp"

namespace xgrad::testing {

/// Reads tests/data/conv_golden/`file` (input, weight, bias and grad_output are float32 data).
inline std::vector<GoldenCase> read_golden(const std::string& file) {
  return read_golden_file("conv_golden", file, {"input", "weight", "bias", "grad_output"});
}

/// The tolerance of the golden comparisons: 1e-10 in float64, relative 1e-4 in float32.
inline double golden_tol(Dtype d) {
  return d == float64 ? 1e-10 : 1e-4;
}

}  // namespace xgrad::testing
