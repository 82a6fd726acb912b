// Tensor basics: construction from xt::xarray and nested braces, factories, random factories,
// metadata, dtype conversions, contiguity, printing (compared with torch's strings) and errors.
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;

namespace {

std::string str(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

template <class T>
std::vector<std::size_t> xshape(const xt::xarray<T>& a) {
  return std::vector<std::size_t>(a.shape().begin(), a.shape().end());
}

// Sample mean and (population) standard deviation of a tensor's values.
std::pair<double, double> mean_std(const Tensor& t) {
  Tensor c = t.to(float64).contiguous();
  const double* p = c.data_ptr<double>();
  const std::int64_t n = c.numel();
  double s = 0;
  for (std::int64_t i = 0; i < n; ++i) s += p[i];
  const double m = s / static_cast<double>(n);
  double v = 0;
  for (std::int64_t i = 0; i < n; ++i) v += (p[i] - m) * (p[i] - m);
  return {m, std::sqrt(v / static_cast<double>(n))};
}

bool same_values(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  xt::xarray<double> xa = to_xarray<double>(a), xb = to_xarray<double>(b);
  return xa == xb;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tensor)

// The suite's namespace is called `tensor` too: name the factory explicitly.
using xgrad::tensor;

// ---- construction from and conversion to xt::xarray -------------------------------------

BOOST_AUTO_TEST_CASE(from_xarray_float32_round_trip) {
  xt::xarray<float> a = {{1.5f, -2.0f, 3.25f}, {4.0f, 0.1f, -6.75f}};
  Tensor t = from_xarray(a);
  BOOST_TEST(t.dtype() == float32);
  BOOST_TEST((t.shape() == Shape{2, 3}));
  BOOST_TEST((t.strides() == Shape{3, 1}));
  BOOST_TEST(t.numel() == 6);
  BOOST_TEST(t.is_contiguous());
  BOOST_TEST(!t.requires_grad());
  const float* p = t.data_ptr<float>();
  BOOST_TEST(p[1] == -2.0f);
  BOOST_TEST(p[4] == 0.1f);
  xt::xarray<float> back = to_xarray<float>(t);
  BOOST_TEST((xshape(back) == std::vector<std::size_t>{2, 3}));
  BOOST_TEST((back == a));
  // The tensor owns a copy: changing the source afterwards does not change it.
  a(0, 0) = 100.0f;
  BOOST_TEST(t.data_ptr<float>()[0] == 1.5f);
}

BOOST_AUTO_TEST_CASE(from_xarray_float64_round_trip) {
  xt::xarray<double> a = {{{0.1, 0.2}, {0.3, 0.4}}, {{-1e300, 1e-300}, {3.0, 4.0}}};
  Tensor t = from_xarray(a);
  BOOST_TEST(t.dtype() == float64);
  BOOST_TEST((t.shape() == Shape{2, 2, 2}));
  BOOST_TEST(t.numel() == 8);
  xt::xarray<double> back = to_xarray<double>(t);
  BOOST_TEST((xshape(back) == std::vector<std::size_t>{2, 2, 2}));
  BOOST_TEST((back == a));
  BOOST_TEST(t.data_ptr<double>()[4] == -1e300);
}

BOOST_AUTO_TEST_CASE(from_xarray_int64_round_trip) {
  xt::xarray<std::int64_t> a = {7, -3, std::int64_t{1} << 40, 0};
  Tensor t = from_xarray(a);
  BOOST_TEST(t.dtype() == int64);
  BOOST_TEST((t.shape() == Shape{4}));
  xt::xarray<std::int64_t> back = to_xarray<std::int64_t>(t);
  BOOST_TEST((back == a));
  BOOST_TEST(t.data_ptr<std::int64_t>()[2] == (std::int64_t{1} << 40));
}

BOOST_AUTO_TEST_CASE(from_xarray_bool_round_trip) {
  xt::xarray<bool> a = {{true, false, true}, {false, false, true}};
  Tensor t = from_xarray(a);
  BOOST_TEST(t.dtype() == boolean);
  BOOST_TEST((t.shape() == Shape{2, 3}));
  xt::xarray<bool> back = to_xarray<bool>(t);
  BOOST_TEST((back == a));
  const bool* p = t.data_ptr<bool>();
  BOOST_TEST(p[0]);
  BOOST_TEST(!p[1]);
  BOOST_TEST(p[5]);
}

BOOST_AUTO_TEST_CASE(from_xarray_zero_dim_and_empty) {
  xt::xarray<double> s = 2.5;
  Tensor t = from_xarray(s);
  BOOST_TEST(t.dim() == 0);
  BOOST_TEST(t.numel() == 1);
  BOOST_TEST(t.item() == 2.5);
  xt::xarray<float> e = xt::xarray<float>::from_shape({0, 3});
  Tensor te = from_xarray(e);
  BOOST_TEST((te.shape() == Shape{0, 3}));
  BOOST_TEST(te.numel() == 0);
  BOOST_TEST((xshape(to_xarray<float>(te)) == std::vector<std::size_t>{0, 3}));
}

BOOST_AUTO_TEST_CASE(to_xarray_converts_dtype) {
  Tensor t = tensor({2.75, -2.75, 0.0, 1.0});
  xt::xarray<std::int64_t> i = to_xarray<std::int64_t>(t);
  BOOST_TEST((i == xt::xarray<std::int64_t>{2, -2, 0, 1}));  // truncation toward zero
  xt::xarray<bool> b = to_xarray<bool>(t);
  BOOST_TEST((b == xt::xarray<bool>{true, true, false, true}));
  xt::xarray<double> d = to_xarray<double>(t);
  BOOST_TEST((d == xt::xarray<double>{2.75, -2.75, 0.0, 1.0}));
}

BOOST_AUTO_TEST_CASE(to_xarray_of_a_transposed_view) {
  Tensor t = tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, float64);
  xt::xarray<double> a = to_xarray<double>(t.t());
  BOOST_TEST((xshape(a) == std::vector<std::size_t>{3, 2}));
  BOOST_TEST((a == xt::xarray<double>{{1.0, 4.0}, {2.0, 5.0}, {3.0, 6.0}}));
}

// ---- nested initializer lists -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(nested_lists_one_to_four_levels) {
  Tensor s = tensor(4.5);
  BOOST_TEST(s.dim() == 0);
  BOOST_TEST(s.item() == 4.5);
  BOOST_TEST(s.dtype() == float32);

  Tensor a = tensor({1.0, 2.0, 3.0});
  BOOST_TEST(a.dtype() == float32);
  expect_values(a, {3}, {1.0, 2.0, 3.0});

  Tensor b = tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, float64);
  BOOST_TEST(b.dtype() == float64);
  expect_values(b, {2, 3}, {1, 2, 3, 4, 5, 6});

  Tensor c = tensor({{{1.0, 2.0}}, {{3.0, 4.0}}, {{5.0, 6.0}}}, float64);
  expect_values(c, {3, 1, 2}, {1, 2, 3, 4, 5, 6});

  Tensor d = tensor({{{{1.0, 2.0}, {3.0, 4.0}}, {{5.0, 6.0}, {7.0, 8.0}}},
                     {{{9.0, 10.0}, {11.0, 12.0}}, {{13.0, 14.0}, {15.0, 16.0}}},
                     {{{17.0, 18.0}, {19.0, 20.0}}, {{21.0, 22.0}, {23.0, 24.0}}}},
                    float64);
  expect_values(d, {3, 2, 2, 2}, {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                  13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24});
}

BOOST_AUTO_TEST_CASE(nested_lists_with_options) {
  Tensor i = tensor({{3.0, -1.0}, {0.0, 7.0}}, int64);
  BOOST_TEST(i.dtype() == int64);
  BOOST_TEST((to_xarray<std::int64_t>(i) == xt::xarray<std::int64_t>{{3, -1}, {0, 7}}));
  Tensor g = tensor({0.5, 1.5}, TensorOptions(float64).requires_grad());
  BOOST_TEST(g.requires_grad());
  BOOST_TEST(g.is_leaf());
  BOOST_TEST(g.dtype() == float64);
  Tensor m = tensor({1.0, 0.0, 2.0}, boolean);
  BOOST_TEST((to_xarray<bool>(m) == xt::xarray<bool>{true, false, true}));
}

BOOST_AUTO_TEST_CASE(ragged_nested_lists_throw) {
  expect_error([] { tensor({{1.0, 2.0}, {3.0}}); }, {"tensor", "ragged"});
  expect_error([] { tensor({{1.0}, {2.0, 3.0}}); }, {"tensor", "ragged"});
  expect_error([] { tensor({{{1.0, 2.0}}, {{3.0, 4.0}, {5.0, 6.0}}}); }, {"ragged"});
  expect_error([] { tensor({{{1.0, 2.0}, {3.0, 4.0}}, {{5.0}, {6.0}}}); }, {"ragged"});
  expect_error([] { tensor({{{{1.0}, {2.0}}}, {{{3.0}, {4.0, 5.0}}}}); }, {"ragged"});
}

// ---- factories ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(zeros_ones_full) {
  Tensor z = zeros({2, 3});
  BOOST_TEST(z.dtype() == float32);
  expect_values(z, {2, 3}, {0, 0, 0, 0, 0, 0});
  Tensor o = ones({4}, float64);
  BOOST_TEST(o.dtype() == float64);
  expect_values(o, {4}, {1, 1, 1, 1});
  Tensor f = full({2, 2}, -2.5, float64);
  expect_values(f, {2, 2}, {-2.5, -2.5, -2.5, -2.5});
  Tensor fi = full({3}, 7.9, int64);
  BOOST_TEST((to_xarray<std::int64_t>(fi) == xt::xarray<std::int64_t>{7, 7, 7}));
  Tensor zb = zeros({2}, boolean);
  BOOST_TEST((to_xarray<bool>(zb) == xt::xarray<bool>{false, false}));
  Tensor zg = zeros({2}, TensorOptions().requires_grad());
  BOOST_TEST(zg.requires_grad());
  BOOST_TEST(zg.is_leaf());
  expect_values(zg, {2}, {0, 0});

  Tensor like = full_like(tensor({{1.0, 2.0}}, float64), 3.0);
  BOOST_TEST(like.dtype() == float64);
  expect_values(like, {1, 2}, {3, 3});
  expect_values(zeros_like(f), {2, 2}, {0, 0, 0, 0});
  expect_values(ones_like(f), {2, 2}, {1, 1, 1, 1});
  BOOST_TEST(ones_like(fi).dtype() == int64);
}

BOOST_AUTO_TEST_CASE(empty_and_scalar_tensor) {
  Tensor e = empty({3, 0, 2}, float64);
  BOOST_TEST((e.shape() == Shape{3, 0, 2}));
  BOOST_TEST(e.numel() == 0);
  BOOST_TEST(e.dtype() == float64);
  Tensor e2 = empty({5, 4});
  BOOST_TEST(e2.numel() == 20);
  BOOST_TEST((e2.strides() == Shape{4, 1}));
  expect_error([] { empty({2, -1}); }, {"negative dimension", "[2,-1]"});

  Tensor s = scalar_tensor(-3.25);
  BOOST_TEST(s.dim() == 0);
  BOOST_TEST(s.shape().empty());
  BOOST_TEST(s.numel() == 1);
  BOOST_TEST(s.dtype() == float32);
  BOOST_TEST(s.item() == -3.25);
  Tensor s64 = scalar_tensor(0.1, float64);
  BOOST_TEST(s64.item() == 0.1);
}

BOOST_AUTO_TEST_CASE(arange_counts_and_values) {
  Tensor a = arange(5.0);
  BOOST_TEST(a.dtype() == float32);
  expect_values(a, {5}, {0, 1, 2, 3, 4});
  // Same element counts as torch.arange.
  expect_values(arange(0.0, 1.0, 0.3, float64), {4}, {0.0, 0.3, 0.6, 0.9}, 1e-15);
  expect_values(arange(5.0, 0.0, -1.5, float64), {4}, {5.0, 3.5, 2.0, 0.5});
  expect_values(arange(0.5, 3.0, 1.0, float64), {3}, {0.5, 1.5, 2.5});
  expect_values(arange(3.0, 1.0, 1.0), {0}, {});
  Tensor i = arange(4.0, int64);
  BOOST_TEST(i.dtype() == int64);
  BOOST_TEST((to_xarray<std::int64_t>(i) == xt::xarray<std::int64_t>{0, 1, 2, 3}));
  expect_error([] { arange(0.0, 1.0, 0.0); }, {"arange", "step"});
}

// ---- random factories ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(randn_is_reproducible_with_manual_seed) {
  manual_seed(42);
  Tensor a = randn({100, 10});
  manual_seed(42);
  Tensor b = randn({100, 10});
  manual_seed(43);
  Tensor c = randn({100, 10});
  BOOST_TEST((a.shape() == Shape{100, 10}));
  BOOST_TEST(a.dtype() == float32);
  BOOST_TEST(same_values(a, b));
  BOOST_TEST(!same_values(a, c));
  // Two draws without reseeding differ too.
  manual_seed(42);
  Tensor d1 = randn({50}, float64);
  Tensor d2 = randn({50}, float64);
  BOOST_TEST(!same_values(d1, d2));
  manual_seed(42);
  BOOST_TEST(same_values(randn({50}, float64), d1));
}

BOOST_AUTO_TEST_CASE(rand_is_reproducible_with_manual_seed) {
  manual_seed(7);
  Tensor a = rand({1000}, float64);
  manual_seed(7);
  Tensor b = rand({1000}, float64);
  manual_seed(8);
  Tensor c = rand({1000}, float64);
  BOOST_TEST(same_values(a, b));
  BOOST_TEST(!same_values(a, c));
}

BOOST_AUTO_TEST_CASE(randn_moments) {
  for (Dtype d : {float32, float64}) {
    manual_seed(123);
    Tensor t = randn({10000}, d);
    BOOST_TEST(t.dtype() == d);
    auto [m, s] = mean_std(t);
    // Standard error of the mean is 0.01; of the std about 0.007.
    BOOST_TEST(std::abs(m) < 0.04, "mean " << m);
    BOOST_TEST(std::abs(s - 1.0) < 0.03, "std " << s);
  }
}

BOOST_AUTO_TEST_CASE(rand_range_and_moments) {
  for (Dtype d : {float32, float64}) {
    manual_seed(321);
    Tensor t = rand({10000}, d);
    xt::xarray<double> v = to_xarray<double>(t);
    BOOST_TEST(xt::amin(v)() >= 0.0);
    BOOST_TEST(xt::amax(v)() < 1.0);
    auto [m, s] = mean_std(t);
    BOOST_TEST(std::abs(m - 0.5) < 0.015, "mean " << m);
    BOOST_TEST(std::abs(s - 1.0 / std::sqrt(12.0)) < 0.01, "std " << s);
  }
  manual_seed(5);
  xt::xarray<double> u = to_xarray<double>(uniform({5000}, -3.0, -1.0, float64));
  BOOST_TEST(xt::amin(u)() >= -3.0);
  BOOST_TEST(xt::amax(u)() < -1.0);
  BOOST_TEST(std::abs(xt::mean(u)() + 2.0) < 0.05);
  expect_error([] { randn({2}, int64); }, {"randn", "int64"});
  expect_error([] { uniform({2}, 1.0, 0.0); }, {"uniform"});
}

// ---- metadata and item --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(shape_dtype_numel_item) {
  Tensor t = zeros({2, 3, 4}, float64);
  BOOST_TEST((t.shape() == Shape{2, 3, 4}));
  BOOST_TEST(t.dim() == 3);
  BOOST_TEST(t.size(0) == 2);
  BOOST_TEST(t.size(-1) == 4);
  BOOST_TEST(t.numel() == 24);
  BOOST_TEST(t.dtype() == float64);
  expect_error([&] { t.size(3); }, {"size", "out of range", "[2,3,4]"});

  BOOST_TEST(full({1, 1}, 2.5, float64).item() == 2.5);
  BOOST_TEST(tensor({-0.1}).item() == static_cast<double>(-0.1f));
  BOOST_TEST(tensor({41.0}, int64).item<std::int64_t>() == 41);
  BOOST_TEST(tensor({1.0}, boolean).item<bool>());
  expect_error([] { tensor({1.0, 2.0}).item(); }, {"item", "[2]"});
  expect_error([] { zeros({0}).item(); }, {"item"});
}

// ---- conversions --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(to_dtype_conversions) {
  Tensor f = tensor({0.1, -2.75, 3.0});
  BOOST_TEST(f.to(float32).impl() == f.impl());  // same dtype: the same tensor

  Tensor d = f.to(float64);
  BOOST_TEST(d.dtype() == float64);
  BOOST_TEST(d.storage() != f.storage());
  expect_values(d, {3}, {static_cast<double>(0.1f), -2.75, 3.0}, 0.0);

  Tensor back = tensor({0.1}, float64).to(float32);
  BOOST_TEST(back.dtype() == float32);
  BOOST_TEST(back.data_ptr<float>()[0] == 0.1f);

  Tensor i = f.to(int64);
  BOOST_TEST((to_xarray<std::int64_t>(i) == xt::xarray<std::int64_t>{0, -2, 3}));
  Tensor b = tensor({0.0, 5.0, -1.0}, int64).to(boolean);
  BOOST_TEST((to_xarray<bool>(b) == xt::xarray<bool>{false, true, true}));
  Tensor bf = b.to(float64);
  expect_values(bf, {3}, {0.0, 1.0, 1.0});

  // Between float dtypes the conversion is differentiable.
  Tensor x = tensor({1.5, 2.0}).requires_grad_();
  Tensor y = x.to(float64);
  BOOST_TEST(y.requires_grad());
  BOOST_REQUIRE(y.grad_fn() != nullptr);
  (y * y).sum().backward();
  BOOST_TEST(x.grad().dtype() == float32);
  expect_values(x.grad(), {2}, {3.0, 4.0});
  // To an integer dtype it is not.
  BOOST_TEST(!x.to(int64).requires_grad());
}

BOOST_AUTO_TEST_CASE(contiguous_of_a_transposed_tensor) {
  Tensor t = arange(6.0, float64).reshape({2, 3});
  BOOST_TEST(t.is_contiguous());
  BOOST_TEST(t.contiguous().impl() == t.impl());

  Tensor tt = t.t();
  BOOST_TEST((tt.shape() == Shape{3, 2}));
  BOOST_TEST((tt.strides() == Shape{1, 3}));
  BOOST_TEST(!tt.is_contiguous());
  BOOST_TEST(tt.storage() == t.storage());  // a view

  Tensor c = tt.contiguous();
  BOOST_TEST(c.is_contiguous());
  BOOST_TEST((c.strides() == Shape{2, 1}));
  BOOST_TEST(c.storage() != t.storage());
  const double* p = c.data_ptr<double>();
  const std::vector<double> expected{0, 3, 1, 4, 2, 5};
  for (std::size_t k = 0; k < expected.size(); ++k) BOOST_TEST(p[k] == expected[k]);
}

BOOST_AUTO_TEST_CASE(float32_and_float64_both_compute) {
  for (Dtype d : {float32, float64}) {
    Tensor a = tensor({{1.0, 2.0}, {3.0, 4.0}}, d).requires_grad_();
    Tensor b = tensor({{0.5, -1.0}, {2.0, 0.25}}, d);
    Tensor y = (a * b).sum() + a.matmul(b).sum();
    BOOST_TEST(y.dtype() == d);
    // sum(a∘b) = 0.5 - 2 + 6 + 1 = 5.5; sum(a·b) = sum_ij a_ik b_kj = [4,6]·[-0.5,2.25] = 11.5
    BOOST_TEST(y.item() == 17.0);
    y.backward();
    // d/da sum(a·b) = row sums of b broadcast over rows: [-0.5, 2.25].
    expect_values(a.grad(), {2, 2}, {0.0, 1.25, 1.5, 2.5});
    BOOST_TEST(a.grad().dtype() == d);
  }
}

// ---- printing -----------------------------------------------------------------------------
// Expected strings are torch 1.13's, except that xgrad names dtypes without "torch." and names
// grad_fn after the op ("mul" rather than "MulBackward0"). Whole-number floats ("1."),
// summaries and line wrapping are tested in tensor_print_test.cpp.

BOOST_AUTO_TEST_CASE(print_vectors_and_scalars) {
  BOOST_TEST(str(tensor({1.0, 2.5})) == "tensor([1.0000, 2.5000])");
  BOOST_TEST(str(tensor({0.1, 0.2})) == "tensor([0.1000, 0.2000])");
  BOOST_TEST(str(tensor({1.5, -2.0}, float64)) == "tensor([ 1.5000, -2.0000], dtype=float64)");
  BOOST_TEST(str(tensor(-0.125)) == "tensor(-0.1250)");
  BOOST_TEST(str(scalar_tensor(3.5, float64)) == "tensor(3.5000, dtype=float64)");
  BOOST_TEST(str(zeros({0})) == "tensor([])");
  BOOST_TEST(str(tensor({1.5, NAN, INFINITY})) == "tensor([1.5000,    nan,    inf])");
  BOOST_TEST(str(Tensor()) == "tensor(undefined)");
}

BOOST_AUTO_TEST_CASE(print_matrices_and_higher_ranks) {
  BOOST_TEST(str(tensor({{1.0, 2.5}, {-3.0, 4.0}})) ==
             "tensor([[ 1.0000,  2.5000],\n        [-3.0000,  4.0000]])");
  BOOST_TEST(str(tensor({{{1.5, 2.0}, {3.0, 4.0}}, {{5.0, 6.0}, {7.0, -8.25}}})) ==
             "tensor([[[ 1.5000,  2.0000],\n         [ 3.0000,  4.0000]],\n\n"
             "        [[ 5.0000,  6.0000],\n         [ 7.0000, -8.2500]]])");
  BOOST_TEST(str(tensor({{{{0.5, 1.5}}, {{2.5, 3.5}}}})) ==
             "tensor([[[[0.5000, 1.5000]],\n\n         [[2.5000, 3.5000]]]])");
  // A transposed (non-contiguous) view prints in logical order.
  BOOST_TEST(str(tensor({{0.5, 1.5}, {2.5, 3.5}}).t()) ==
             "tensor([[0.5000, 2.5000],\n        [1.5000, 3.5000]])");
}

BOOST_AUTO_TEST_CASE(print_scientific_notation) {
  BOOST_TEST(str(tensor({1e-5, 1.0})) == "tensor([1.0000e-05, 1.0000e+00])");
  BOOST_TEST(str(tensor({-0.00005, 0.5})) == "tensor([-5.0000e-05,  5.0000e-01])");
  BOOST_TEST(str(tensor({0.001, 2.0})) == "tensor([1.0000e-03, 2.0000e+00])");
  BOOST_TEST(str(tensor({0.25, 3000.5})) == "tensor([2.5000e-01, 3.0005e+03])");
  BOOST_TEST(str(tensor({123456789.0, 1.5}, float64)) ==
             "tensor([1.2346e+08, 1.5000e+00], dtype=float64)");
  // A ratio of at most 1000 keeps fixed notation; zeros do not count.
  BOOST_TEST(str(tensor({-0.001, 0.5})) == "tensor([-0.0010,  0.5000])");
  BOOST_TEST(str(tensor({0.0, 0.25})) == "tensor([0.0000, 0.2500])");
}

BOOST_AUTO_TEST_CASE(print_autograd_suffixes) {
  Tensor a = tensor({0.5, 1.25}).requires_grad_();
  BOOST_TEST(str(a) == "tensor([0.5000, 1.2500], requires_grad=True)");
  BOOST_TEST(str(a * 3.0) == "tensor([1.5000, 3.7500], grad_fn=<mul>)");
  Tensor b = tensor({{0.5, 1.25}, {2.0, -0.75}}, float64).requires_grad_();
  BOOST_TEST(str(b * 1.0) ==
             "tensor([[ 0.5000,  1.2500],\n        [ 2.0000, -0.7500]], dtype=float64, "
             "grad_fn=<mul>)");
  BOOST_TEST(str(a.detach()) == "tensor([0.5000, 1.2500])");
}

BOOST_AUTO_TEST_CASE(print_int64_and_bool) {
  BOOST_TEST(str(tensor({1.0, -20.0, 3.0}, int64)) == "tensor([  1, -20,   3])");
  BOOST_TEST(str(tensor({{1.0, -20.0}, {300.0, 4.0}}, int64)) ==
             "tensor([[  1, -20],\n        [300,   4]])");
  BOOST_TEST(str(tensor(7.0, int64)) == "tensor(7)");
  BOOST_TEST(str(tensor({1.0, 0.0}, boolean)) == "tensor([ True, False])");
  BOOST_TEST(str(tensor({{1.0, 0.0}, {0.0, 1.0}}, boolean)) ==
             "tensor([[ True, False],\n        [False,  True]])");
  BOOST_TEST(str(tensor(1.0, boolean)) == "tensor(True)");
}

BOOST_AUTO_TEST_CASE(print_follows_the_default_dtype) {
  set_default_dtype(float64);
  const std::string f64 = str(tensor({1.5, 2.25}));
  const std::string f32 = str(tensor({1.5, 2.25}, float32));
  set_default_dtype(float32);
  BOOST_TEST(f64 == "tensor([1.5000, 2.2500])");
  BOOST_TEST(f32 == "tensor([1.5000, 2.2500], dtype=float32)");
  expect_error([] { set_default_dtype(int64); }, {"set_default_dtype", "int64"});
  BOOST_TEST(default_dtype() == float32);
}

// ---- errors -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(data_ptr_with_the_wrong_type_throws) {
  Tensor f = zeros({2});
  expect_error([&] { f.data_ptr<double>(); }, {"data_ptr", "float32", "float64"});
  expect_error([&] { f.data_ptr<std::int64_t>(); }, {"data_ptr", "int64"});
  Tensor b = zeros({2}, boolean);
  expect_error([&] { b.data_ptr<float>(); }, {"data_ptr", "bool", "float32"});
  BOOST_TEST(f.data_ptr<float>() == static_cast<float*>(f.raw_data()));
  // A view's data_ptr points at its offset.
  Tensor v = arange(6.0, float64).reshape({2, 3});
  Tensor row = slice(v, 0, 1, 2);
  BOOST_TEST(row.offset() == 3);
  BOOST_TEST(row.data_ptr<double>()[0] == 3.0);
}

BOOST_AUTO_TEST_CASE(undefined_tensor_operations_throw) {
  Tensor u;
  BOOST_TEST(!u.defined());
  const std::vector<std::string> msg{"undefined"};
  expect_error([&] { (void)u.shape(); }, msg);
  expect_error([&] { (void)u.numel(); }, msg);
  expect_error([&] { (void)u.dtype(); }, msg);
  expect_error([&] { (void)u.dim(); }, msg);
  expect_error([&] { (void)u.item(); }, msg);
  expect_error([&] { (void)u.data_ptr<float>(); }, msg);
  expect_error([&] { (void)u.requires_grad(); }, msg);
  expect_error([&] { u.requires_grad_(); }, msg);
  expect_error([&] { (void)u.to(float64); }, msg);
  expect_error([&] { (void)u.contiguous(); }, msg);
  expect_error([&] { (void)to_xarray<float>(u); }, msg);
  expect_error([&] { u.fill_(1.0); }, msg);
  expect_error([&] { (void)u.detach(); }, msg);
  expect_error([&] { (void)(u + ones({1})); }, msg);
}

BOOST_AUTO_TEST_CASE(requires_grad_only_on_float_tensors) {
  expect_error([] { zeros({2}, int64).requires_grad_(); }, {"requires_grad_", "int64"});
  expect_error([] { zeros({2}, boolean).requires_grad_(); }, {"requires_grad_", "bool"});
  Tensor x = zeros({2}, float64).requires_grad_();
  BOOST_TEST(x.requires_grad());
  x.requires_grad_(false);
  BOOST_TEST(!x.requires_grad());
}

BOOST_AUTO_TEST_CASE(nested_braces_around_single_numbers_are_lists) {
  Tensor col = tensor({{1.0}, {2.0}}, float64);
  xgrad::testing::expect_values(col, {2, 1}, {1.0, 2.0});
  Tensor one = tensor({{2.5}}, float64);
  xgrad::testing::expect_values(one, {1, 1}, {2.5});
  Tensor scalar = tensor(2.5, float64);
  xgrad::testing::expect_values(scalar, {}, {2.5});
  xgrad::testing::expect_error([] { tensor({{1.0}, 2.0}); }, {"tensor", "ragged"});
}

BOOST_AUTO_TEST_SUITE_END()
