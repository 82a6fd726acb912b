// Comparisons: eq, ne, lt, le, gt, ge and the operators == != < <= > >= with a tensor
// (broadcasting) or a scalar on either side. Each gives a bool tensor with no grad_fn; values
// are checked element by element (torch gives the same on these inputs).
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::kNaN;
using xgrad::testing::make;

namespace {

void expect_bool(const Tensor& t, const Shape& shape, const std::vector<int>& values) {
  BOOST_REQUIRE(t.dtype() == boolean);
  BOOST_REQUIRE(t.shape() == shape);
  BOOST_TEST(!t.requires_grad());
  const auto a = to_xarray<bool>(t);
  BOOST_REQUIRE_EQUAL(a.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    BOOST_CHECK_MESSAGE(a.data()[i] == (values[i] != 0), "element " << i);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(comparison)

BOOST_AUTO_TEST_CASE(tensor_operators_with_broadcasting) {
  for (Dtype d : {float64, float32, int64}) {
    BOOST_TEST_CONTEXT("dtype " << dtype_name(d)) {
      const Tensor a = make({1.0, 2.0, 3.0}, {3, 1}, d);
      const Tensor b = make({1.0, 2.0, 3.0}, {3}, d);
      expect_bool(a == b, {3, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
      expect_bool(a != b, {3, 3}, {0, 1, 1, 1, 0, 1, 1, 1, 0});
      expect_bool(a < b, {3, 3}, {0, 1, 1, 0, 0, 1, 0, 0, 0});
      expect_bool(a <= b, {3, 3}, {1, 1, 1, 0, 1, 1, 0, 0, 1});
      expect_bool(a > b, {3, 3}, {0, 0, 0, 1, 0, 0, 1, 1, 0});
      expect_bool(a >= b, {3, 3}, {1, 0, 0, 1, 1, 0, 1, 1, 1});
      expect_bool(ne(b, b), {3}, {0, 0, 0});
    }
  }
  const Tensor p = xgrad::tensor({1.0, 0.0}, boolean), q = xgrad::tensor({1.0, 1.0}, boolean);
  expect_bool(p == q, {2}, {1, 0});
  expect_bool(p < q, {2}, {0, 1});
}

BOOST_AUTO_TEST_CASE(scalar_on_either_side) {
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT("dtype " << dtype_name(d)) {
      const Tensor a = make({-1.0, 0.5, 2.0, 3.0}, {2, 2}, d);
      expect_bool(a == 2.0, {2, 2}, {0, 0, 1, 0});
      expect_bool(a != 2.0, {2, 2}, {1, 1, 0, 1});
      expect_bool(a < 0.5, {2, 2}, {1, 0, 0, 0});
      expect_bool(a <= 0.5, {2, 2}, {1, 1, 0, 0});
      expect_bool(a > 2.0, {2, 2}, {0, 0, 0, 1});
      expect_bool(a >= 2.0, {2, 2}, {0, 0, 1, 1});
      expect_bool(2.0 == a, {2, 2}, {0, 0, 1, 0});
      expect_bool(2.0 != a, {2, 2}, {1, 1, 0, 1});
      expect_bool(0.5 < a, {2, 2}, {0, 0, 1, 1});
      expect_bool(0.5 <= a, {2, 2}, {0, 1, 1, 1});
      expect_bool(2.0 > a, {2, 2}, {1, 1, 0, 0});
      expect_bool(2.0 >= a, {2, 2}, {1, 1, 1, 0});
      // Integer literals work too.
      expect_bool(a > 0, {2, 2}, {0, 1, 1, 1});
    }
  }
  // The named forms.
  const Tensor a = make({1.0, 2.0}, {2});
  expect_bool(eq(a, 1.0), {2}, {1, 0});
  expect_bool(ne(a, 1.0), {2}, {0, 1});
  expect_bool(lt(a, 2.0), {2}, {1, 0});
  expect_bool(le(a, 1.0), {2}, {1, 0});
  expect_bool(gt(a, 1.0), {2}, {0, 1});
  expect_bool(ge(a, 2.0), {2}, {0, 1});
}

// The scalar is rounded to a float tensor's dtype first (torch: float32 0.1 == 0.1 is true);
// int64 and bool tensors compare exactly with an integral scalar, in double with a fractional
// one.
BOOST_AUTO_TEST_CASE(scalar_conversion_rules) {
  expect_bool(xgrad::tensor({0.1}, float32) == 0.1, {1}, {1});
  expect_bool(xgrad::tensor({0.1}, float64) == static_cast<double>(0.1f), {1}, {0});
  const Tensor i = xgrad::tensor({-1.0, 0.0, 1.0}, int64);
  expect_bool(i < 0.5, {3}, {1, 1, 0});
  expect_bool(i == 0.0, {3}, {0, 1, 0});
  expect_bool(i > -0.5, {3}, {0, 1, 1});
  expect_bool(i != 0.5, {3}, {1, 1, 1});
  // 2^53 + 1 as int64 is exactly comparable with the double 2^53 (not equal).
  const Tensor big = from_data(std::vector<std::int64_t>{(std::int64_t{1} << 53) + 1}.data(), {1});
  expect_bool(big == 9007199254740992.0, {1}, {0});
  expect_bool(big > 9007199254740992.0, {1}, {1});
  const Tensor b = xgrad::tensor({1.0, 0.0}, boolean);
  expect_bool(b == 1, {2}, {1, 0});
  expect_bool(b < 0.5, {2}, {0, 1});
}

BOOST_AUTO_TEST_CASE(nan_and_autograd) {
  const Tensor n = make({kNaN, 1.0}, {2});
  expect_bool(n == n, {2}, {0, 1});
  expect_bool(n != n, {2}, {1, 0});
  expect_bool(n < 2.0, {2}, {0, 1});
  expect_bool(n != kNaN, {2}, {1, 1});
  // Inputs that require grad give results without history.
  Tensor x = make({1.0, 2.0}, {2}).requires_grad_();
  Tensor y = x * 2.0;
  for (const Tensor& r : {x < y, y >= 3.0, 1.0 == x, x != y}) {
    BOOST_TEST(!r.grad_fn());
    BOOST_TEST(!r.requires_grad());
  }
  expect_bool(x < y, {2}, {1, 1});
  // Non-contiguous inputs.
  Tensor m = arange(6.0, float64).reshape({2, 3}).t();  // [[0,3],[1,4],[2,5]]
  expect_bool(m > 2.0, {3, 2}, {0, 1, 0, 1, 0, 1});
  expect_bool(m == m.contiguous(), {3, 2}, {1, 1, 1, 1, 1, 1});
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_shapes) {
  const Tensor a = zeros({2, 3}), b = zeros({4});
  expect_error([&] { (void)(a < b); }, {"lt", "[2,3]", "[4]", "broadcast"});
  expect_error([&] { (void)(a != b); }, {"ne", "[2,3]", "[4]"});
  expect_error(
      [&] {
        (void)(a == zeros({2, 3}, float64));
      },
      {"eq", "same dtype", "float32", "float64"});
  expect_error([&] { (void)(Tensor() > 1.0); }, {"undefined"});
}

BOOST_AUTO_TEST_SUITE_END()
