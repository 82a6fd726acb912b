// Shared helpers for the Boost.Test suites.
#pragma once

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "xgrad/xgrad.hpp"

namespace xgrad::testing {

/// The tolerances the issue asks every op's gradcheck to meet (tighter than torch's defaults).
inline constexpr double kAtol = 1e-7;
inline constexpr double kRtol = 1e-5;

/// Asserts that t (any float dtype) has the given shape and values within tol, element by
/// element (row-major order).
inline void expect_values(const Tensor& t, const Shape& shape, const std::vector<double>& values,
                          double tol = 1e-12) {
  BOOST_REQUIRE_MESSAGE(t.defined(), "tensor is undefined");
  BOOST_REQUIRE_MESSAGE(t.shape() == shape, "shape " << format_shape(t.shape()) << " != expected "
                                                     << format_shape(shape));
  Tensor c = t.detach().to(Dtype::float64).contiguous();
  BOOST_REQUIRE_EQUAL(c.numel(), static_cast<std::int64_t>(values.size()));
  const double* p = c.data_ptr<double>();
  for (std::size_t i = 0; i < values.size(); ++i) {
    const bool ok = (std::isnan(values[i]) && std::isnan(p[i])) || p[i] == values[i] ||
                    std::abs(p[i] - values[i]) <= tol * std::max(1.0, std::abs(values[i]));
    BOOST_CHECK_MESSAGE(ok, "element " << i << ": got " << p[i] << ", expected " << values[i]);
  }
}

/// Both float dtypes, for value checks that run in each.
inline const Dtype kFloatDtypes[] = {float64, float32};
inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Relative tolerance of value checks: exact-ish in float64, float precision in float32.
inline double tol(Dtype d) {
  return d == float64 ? 1e-12 : 1e-6;
}

/// A tensor of dtype d holding `values` (row-major) in `shape`.
inline Tensor make(const std::vector<double>& values, const Shape& shape, Dtype d = float64) {
  BOOST_REQUIRE_EQUAL(static_cast<std::int64_t>(values.size()), shape_numel(shape));
  return from_data(values.data(), shape).to(d);
}

/// The values of `t` (any dtype) as float64, in row-major order.
inline std::vector<double> values_of(const Tensor& t) {
  Tensor c = t.detach().to(float64).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

/// True when every element of t is finite.
inline bool all_finite(const Tensor& t) {
  Tensor c = t.detach().to(float64).contiguous();
  for (std::int64_t i = 0; i < c.numel(); ++i)
    if (!std::isfinite(c.data_ptr<double>()[i])) return false;
  return true;
}

/// Asserts that `f` throws xgrad::Error with exactly `message`.
inline void expect_error_exact(const std::function<void()>& f, const std::string& message) {
  try {
    f();
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()) == message);
    return;
  }
  BOOST_ERROR("expected xgrad::Error: " << message);
}

/// Runs gradcheck with the suite's tight tolerances and reports its message on failure.
/// What expect_gradcheck checks beyond the first derivative.
struct DerivativeChecks {
  bool second_order =
      true;                // gradgradcheck (off only for the exceptions docs/higher-order.md lists)
  bool forward = true;     // forward mode (jvp) against reverse mode
  double fwd_tol = 1e-10;  // |vᵀ(J·u) - (Jᵀv)·u| ≤ fwd_tol·(1 + |vᵀ(J·u)|)
};

/// Every derivative of f at `inputs` (float64; the ones that require grad): gradcheck against
/// finite differences, gradgradcheck (the backward is itself differentiable), and forward
/// mode against reverse mode (derivative_checks.hpp).
void expect_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                      const std::vector<Tensor>& inputs, double eps = 1e-6,
                      DerivativeChecks c = {});

/// A float64 leaf of the given shape with reproducible values in [lo, hi), requiring grad.
inline Tensor leaf(const Shape& shape, double lo = -1.0, double hi = 1.0, std::uint64_t seed = 1) {
  manual_seed(seed);
  return uniform(shape, lo, hi, Dtype::float64).requires_grad_();
}

/// Asserts that `f` throws xgrad::Error whose message contains every one of `parts`.
inline void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      BOOST_CHECK_MESSAGE(msg.find(p) != std::string::npos,
                          "message '" << msg << "' lacks '" << p << "'");
    return;
  }
  BOOST_ERROR("expected xgrad::Error mentioning " << (parts.empty() ? "" : parts[0]));
}

}  // namespace xgrad::testing

#include "derivative_checks.hpp"  // defines expect_gradcheck
