// Finite-difference gradient checker: compares an op's backward with central differences.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad {

/// What gradcheck found: ok, the worst element (largest |analytic - numeric| beyond the
/// tolerance, or the largest difference when all pass) and a message naming it.
struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;  // max |analytic - numeric| over all Jacobian entries
  std::size_t input = 0;     // input of the worst entry
  std::int64_t element = 0;  // flat index into that input
  std::int64_t output = 0;   // flat index into the output
  double analytic = 0, numeric = 0;
  std::string message;
  explicit operator bool() const { return ok; }
};

/// Checks d f(inputs) / d inputs for every input that requires grad, element by element of
/// the full Jacobian: analytic rows come from backward with one-hot seeds, numeric columns
/// from central differences (f(x+eps) - f(x-eps)) / 2eps. An entry passes when
/// |analytic - numeric| <= atol + rtol·|numeric| (torch.autograd.gradcheck's rule and
/// defaults). Inputs must be float64 (finite differences in float32 are too coarse); throws
/// xgrad::Error otherwise or when f returns a non-float64 tensor. Cost: one backward per
/// output element and two forwards per input element — keep shapes small.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, double eps = 1e-6, double atol = 1e-5,
                          double rtol = 1e-3);

/// The second-order check (torch.autograd.gradgradcheck): gradcheck of the vector-Jacobian
/// product (x, v) ↦ vᵀ·∂f/∂x, computed by grad(..., create_graph=true), with respect to the
/// inputs that require grad and to v. It passes when f's backward is itself correctly
/// differentiable — the first derivative's own derivative matches finite differences of it.
/// `grad_outputs` is v (f's output shape, float64); undefined draws v from N(0, 1) with a
/// private generator seeded by `seed` (the process-wide generator is left alone). Same
/// tolerances and errors as gradcheck; cost: gradcheck's, with one double backward per
/// element of the first derivative.
GradcheckResult gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                              const std::vector<Tensor>& inputs,
                              const Tensor& grad_outputs = Tensor(), double eps = 1e-6,
                              double atol = 1e-5, double rtol = 1e-3, std::uint64_t seed = 0);

}  // namespace xgrad
