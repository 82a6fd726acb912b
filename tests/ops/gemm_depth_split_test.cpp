// The GEMM of a deep product with a small result (a weight gradient dW = dYᵀ·X over 2,048
// rows), which detail::gemm runs as two halves of the depth: the same bits with one thread and
// two, and the product's values (against float64) in all four transpose cases, with beta.
#include <vector>

#include "test_util.hpp"
#include "xgrad/ops/linalg.hpp"
#include "xgrad/runtime.hpp"

using namespace xgrad;
using xgrad::testing::expect_values;
using xgrad::testing::values_of;

BOOST_AUTO_TEST_SUITE(gemm_depth_split)

BOOST_AUTO_TEST_CASE(same_bits_with_any_thread_count_and_right_values) {
  manual_seed(8);
  Tensor a = uniform({2050, 96}, -1.0, 1.0, float32);  // K = 2,050: halves of 1,040 and 1,010
  Tensor b = uniform({2050, 80}, -1.0, 1.0, float32);
  const int before = get_num_threads();
  std::vector<std::vector<double>> runs;
  for (int t : {1, 2}) {
    set_num_threads(t);
    runs.push_back(values_of(matmul(a.t(), b)));                       // Aᵀ·B
    runs.push_back(values_of(matmul(b.t().contiguous(), a)));          // B'·A, B' [80, K]
    runs.push_back(values_of(matmul(a.t(), b.t().contiguous().t())));  // a transposed B
  }
  set_num_threads(before);
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(runs[i] == runs[i + 3]);  // bit for bit
  Tensor ref = matmul(a.to(float64).t(), b.to(float64));
  expect_values(matmul(a.t(), b), ref.shape(), values_of(ref), 1e-3);
  Tensor ref2 = matmul(b.to(float64).t(), a.to(float64));
  expect_values(matmul(b.t().contiguous(), a), ref2.shape(), values_of(ref2), 1e-3);
  // linear's forward (bias prefilled, beta = 1) over a deep input: y = x·wᵀ + bias.
  Tensor x = uniform({40, 4096}, -1.0, 1.0, float32), w = uniform({30, 4096}, -1.0, 1.0, float32);
  Tensor bias = uniform({30}, -1.0, 1.0, float32);
  Tensor y_ref = linear(x.to(float64), w.to(float64), bias.to(float64));
  expect_values(linear(x, w, bias), y_ref.shape(), values_of(y_ref), 1e-3);
}

BOOST_AUTO_TEST_SUITE_END()
