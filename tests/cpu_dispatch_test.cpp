// Run-time kernel dispatch and the GEMM thread split (src/detail/cpu.hpp, blas.hpp): the
// elementwise ops and the in-place updates built on std::fma give, bit for bit, what a plain
// scalar loop compiled here gives, in whichever variant detail::isa() chose (ctest runs this
// suite a second time with XGRAD_CPU_CAPABILITY=default, so every dispatched kernel is held
// to the same bits in both variants), and a GEMM split across threads gives the bits of one
// single-threaded call.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "test_util.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

// Restores the GEMM thread count on scope exit.
struct ThreadsGuard {
  int saved = get_num_threads();
  ~ThreadsGuard() { set_num_threads(saved); }
};

template <class T>
std::vector<T> raw(const Tensor& t) {
  Tensor c = t.contiguous();
  const T* p = c.data_ptr<T>();
  return std::vector<T>(p, p + c.numel());
}

// Bitwise equality (NaNs with the same payload compare equal).
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// 1,000 values in [-3, 3] with a few specials: zero, negative zero, denormals, infinities, NaN.
template <class T>
Tensor inputs(std::uint64_t seed, Dtype d) {
  manual_seed(seed);
  Tensor t = uniform({1000}, -3, 3, d).contiguous();
  T* p = t.data_ptr<T>();
  p[0] = T(0);
  p[1] = -T(0);
  p[2] = std::numeric_limits<T>::denorm_min();
  p[3] = std::numeric_limits<T>::infinity();
  p[4] = -std::numeric_limits<T>::infinity();
  p[5] = std::numeric_limits<T>::quiet_NaN();
  return t;
}

template <class T>
void check_elementwise(Dtype d) {
  const Tensor a = inputs<T>(1, d), b = inputs<T>(2, d);
  const std::vector<T> va = raw<T>(a), vb = raw<T>(b);
  const std::size_t n = va.size();
  std::vector<T> want(n);
  auto expect = [&](const Tensor& got, const char* what) {
    BOOST_TEST_CONTEXT(what << " in " << dtype_name(d) << " on " << cpu_capability()) {
      BOOST_TEST(same_bits(raw<T>(got), want));
    }
  };
  for (std::size_t i = 0; i < n; ++i) want[i] = va[i] * vb[i];
  expect(a * b, "a * b");
  for (std::size_t i = 0; i < n; ++i) want[i] = va[i] / vb[i];
  expect(a / b, "a / b");
  for (std::size_t i = 0; i < n; ++i) want[i] = va[i] - T(0.75);
  expect(a - 0.75, "a - scalar");
  for (std::size_t i = 0; i < n; ++i) want[i] = std::sqrt(va[i]);
  expect(xgrad::sqrt(a), "sqrt");
  for (std::size_t i = 0; i < n; ++i) want[i] = std::exp(va[i]);
  expect(xgrad::exp(a), "exp");
  for (std::size_t i = 0; i < n; ++i) want[i] = va[i] > T(0) ? va[i] : T(0);
  // relu's NaN stays NaN in torch; compare the non-NaN lanes through the same rule as xgrad.
  {
    const std::vector<T> got = raw<T>(relu(a));
    for (std::size_t i = 0; i < n; ++i)
      if (!std::isnan(va[i])) BOOST_TEST(got[i] == want[i]);
  }
  // add_ with alpha rounds once, as std::fma (an instruction in the AVX2 variant, libm's
  // correctly rounded fma in the baseline).
  for (std::size_t i = 0; i < n; ++i) want[i] = std::fma(T(0.3), vb[i], va[i]);
  {
    Tensor c = a.clone();
    c.add_(b, 0.3);
    expect(c, "add_(b, alpha)");
  }
  // The in-place target aliases the operand: x.add_(x, alpha).
  for (std::size_t i = 0; i < n; ++i) want[i] = std::fma(T(-1.5), va[i], va[i]);
  {
    Tensor c = a.clone();
    c.add_(c, -1.5);
    expect(c, "c.add_(c, alpha)");
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cpu_dispatch)

BOOST_AUTO_TEST_CASE(elementwise_kernels_match_a_scalar_loop_bit_for_bit) {
  check_elementwise<float>(float32);
  check_elementwise<double>(float64);
}

BOOST_AUTO_TEST_CASE(gemm_split_across_threads_gives_the_single_thread_bits) {
  ThreadsGuard guard;
  // Shapes that gemm splits into blocks of rows (>= 2·10^6 multiply-adds each), with all four
  // transposition cases reached through matmul of transposed views, plus a small one.
  const std::vector<std::vector<std::int64_t>> shapes = {
      {64, 784, 256}, {256, 64, 784}, {300, 200, 100}, {200, 517, 260}, {8, 8, 8}};
  for (Dtype d : kFloatDtypes) {
    for (const auto& s : shapes) {
      const std::int64_t m = s[0], k = s[1], n = s[2];
      manual_seed(7);
      const Tensor a = uniform({m, k}, -1, 1, d), b = uniform({k, n}, -1, 1, d);
      const Tensor at = uniform({k, m}, -1, 1, d), bt = uniform({n, k}, -1, 1, d);
      std::vector<std::vector<double>> results[2];
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        BOOST_TEST(get_num_threads() == threads);
        for (const Tensor& y :
             {matmul(a, b), matmul(at.t(), b), matmul(a, bt.t()), matmul(at.t(), bt.t())})
          results[threads - 1].push_back(values_of(y));
      }
      BOOST_TEST_CONTEXT(dtype_name(d)
                         << " [" << m << "," << k << "] @ [" << k << "," << n << "]") {
        for (std::size_t i = 0; i < results[0].size(); ++i)
          BOOST_TEST(results[0][i] == results[1][i]);
      }
      // And the values are a product: one element against a float64 dot product.
      double dot = 0;
      const Tensor a64 = a.to(float64), b64 = b.to(float64);
      for (std::int64_t j = 0; j < k; ++j)
        dot += a64.data_ptr<double>()[j] * b64.data_ptr<double>()[j * n];
      BOOST_TEST(std::abs(results[1][0][0] - dot) <= tol(d) * k);
    }
  }
  expect_error([] { set_num_threads(0); }, {"set_num_threads", "0"});
}

BOOST_AUTO_TEST_SUITE_END()
