// Matrix products: matmul (2-D, batched 3-D, 3-D·2-D broadcast, vectors, transposed operands
// handed to BLAS as transpose flags) and linear (with and without bias). Values in float64 and
// float32, gradcheck in float64, and the error messages of bad input.
#include <string>

#include "test_util.hpp"
#include "xgrad/nn/linear.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_error_exact;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::leaf;
using xgrad::testing::tol;
using xgrad::testing::values_of;
namespace fwd = xgrad::autograd::forward_ad;

namespace {

// [[1,2,3],[4,5,6]] and [[7,8],[9,10],[11,12]]: their product is [[58,64],[139,154]].
Tensor mat_a(Dtype d) {
  return tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, d);
}
Tensor mat_b(Dtype d) {
  return tensor({{7.0, 8.0}, {9.0, 10.0}, {11.0, 12.0}}, d);
}
// [2,2,3] holding 0..11, and [2,3,2] holding -2, -1.5, ..., 3.5.
Tensor batch_a(Dtype d) {
  return arange(12.0, d).reshape({2, 2, 3});
}
Tensor batch_b(Dtype d) {
  return arange(-2.0, 4.0, 0.5, d).reshape({2, 3, 2});
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
// Same shape and exactly the same values.
bool same(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && values_of(a) == values_of(b);
}

Tensor mm(const std::vector<Tensor>& in) {
  return matmul(in[0], in[1]);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(linalg)

BOOST_AUTO_TEST_CASE(matmul_2d_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor c = matmul(mat_a(d), mat_b(d));
    BOOST_TEST((c.dtype() == d));
    expect_values(c, {2, 2}, {58, 64, 139, 154}, tol(d));
    Tensor af = tensor({{0.5, -1.5}, {2.25, 0.1}}, d);
    Tensor bf = tensor({{1.2, -0.3}, {0.7, 2.0}}, d);
    expect_values(matmul(af, bf), {2, 2}, {-0.45, -3.15, 2.77, -0.475}, tol(d));
    expect_values(mat_a(d).matmul(mat_b(d)), {2, 2}, {58, 64, 139, 154}, tol(d));
    // [1,3]·[3,1] and [3,1]·[1,2] (degenerate leading dimensions).
    expect_values(matmul(slice(mat_a(d), 0, 1, 2), slice(mat_b(d), 1, 0, 1)), {1, 1}, {139},
                  tol(d));
    expect_values(matmul(slice(mat_b(d), 1, 1, 2), slice(slice(mat_a(d), 0, 0, 1), 1, 0, 2)),
                  {3, 2}, {8, 16, 10, 20, 12, 24}, tol(d));
    // An empty inner dimension gives zeros.
    expect_values(matmul(zeros({2, 0}, d), zeros({0, 3}, d)), {2, 3}, {0, 0, 0, 0, 0, 0});
  }
}

BOOST_AUTO_TEST_CASE(matmul_2d_gradcheck) {
  expect_gradcheck(mm, {leaf({2, 3}, -1, 1, 1), leaf({3, 4}, -1, 1, 2)});
  expect_gradcheck(mm, {leaf({1, 3}, -1, 1, 3), leaf({3, 1}, -1, 1, 4)});
  // Only one operand requires grad.
  expect_gradcheck(mm, {leaf({2, 3}, -1, 1, 5), mat_b(float64)});
  expect_gradcheck(mm, {mat_a(float64), leaf({3, 2}, -1, 1, 6)});
  // By value: d sum(a·b) / da = row sums of b, broadcast; d / db = column sums of a.
  Tensor a = mat_a(float64).requires_grad_();
  Tensor b = mat_b(float64).requires_grad_();
  matmul(a, b).sum().backward();
  expect_values(a.grad(), {2, 3}, {15, 19, 23, 15, 19, 23});
  expect_values(b.grad(), {3, 2}, {5, 5, 7, 7, 9, 9});
}

BOOST_AUTO_TEST_CASE(matmul_batched_3d) {
  for (Dtype d : kFloatDtypes) {
    expect_values(matmul(batch_a(d), batch_b(d)), {2, 2, 2}, {-1, 0.5, -10, -4, 44, 54.5, 62, 77},
                  tol(d));
  }
  expect_gradcheck(mm, {leaf({2, 2, 3}, -1, 1, 1), leaf({2, 3, 4}, -1, 1, 2)});
  expect_gradcheck(mm, {leaf({3, 1, 2}, -1, 1, 3), leaf({3, 2, 2}, -1, 1, 4)});
}

BOOST_AUTO_TEST_CASE(matmul_3d_2d_broadcast) {
  for (Dtype d : kFloatDtypes) {
    // [B,m,k]·[k,n] and [m,k]·[B,k,n].
    expect_values(matmul(batch_a(d), mat_b(d)), {2, 2, 2}, {31, 34, 112, 124, 193, 214, 274, 304},
                  tol(d));
    expect_values(matmul(mat_a(d), batch_b(d)), {2, 2, 2}, {-4, -1, -13, -5.5, 14, 17, 32, 39.5},
                  tol(d));
  }
  expect_gradcheck(mm, {leaf({2, 2, 3}, -1, 1, 1), leaf({3, 4}, -1, 1, 2)});
  expect_gradcheck(mm, {leaf({2, 3}, -1, 1, 3), leaf({3, 3, 2}, -1, 1, 4)});
  // The broadcast operand's gradient sums over the batch.
  Tensor b = mat_b(float64).requires_grad_();
  matmul(batch_a(float64), b).sum().backward();
  // Column sums of a, over both batches: (0+3+6+9), (1+4+7+10), (2+5+8+11).
  expect_values(b.grad(), {3, 2}, {18, 18, 22, 22, 26, 26});
  Tensor a = mat_a(float64).requires_grad_();
  matmul(a, batch_b(float64)).sum().backward();
  // Row sums of b over both batches: (-2-1.5+1+1.5), (-1-0.5+2+2.5), (0+0.5+3+3.5).
  expect_values(a.grad(), {2, 3}, {-1, 3, 7, -1, 3, 7});
}

BOOST_AUTO_TEST_CASE(matmul_vector_cases) {
  for (Dtype d : kFloatDtypes) {
    Tensor v = tensor({1.0, -2.0, 0.5}, d);
    expect_values(matmul(v, mat_b(d)), {2}, {-5.5, -6}, tol(d));  // [k]·[k,n] -> [n]
    expect_values(matmul(mat_a(d), v), {2}, {-1.5, -3}, tol(d));  // [m,k]·[k] -> [m]
    expect_values(matmul(v, v), {}, {5.25}, tol(d));              // [k]·[k] -> []
    expect_values(matmul(batch_a(d), v), {2, 2}, {-1, -2.5, -4, -5.5}, tol(d));     // -> [B,m]
    expect_values(matmul(v, batch_b(d)), {2, 2}, {0, -0.25, -1.5, -1.75}, tol(d));  // -> [B,n]
  }
  expect_gradcheck(mm, {leaf({3}, -1, 1, 1), leaf({3, 2}, -1, 1, 2)});
  expect_gradcheck(mm, {leaf({2, 3}, -1, 1, 3), leaf({3}, -1, 1, 4)});
  expect_gradcheck(mm, {leaf({3}, -1, 1, 5), leaf({3}, -1, 1, 6)});
  expect_gradcheck(mm, {leaf({2, 2, 3}, -1, 1, 7), leaf({3}, -1, 1, 8)});
  expect_gradcheck(mm, {leaf({3}, -1, 1, 9), leaf({2, 3, 2}, -1, 1, 10)});
}

BOOST_AUTO_TEST_CASE(matmul_transposed_operands_use_blas_flags) {
  for (Dtype d : kFloatDtypes) {
    // at is A stored transposed; bt is B stored transposed: both non-contiguous views.
    Tensor at = tensor({{1.0, 4.0}, {2.0, 5.0}, {3.0, 6.0}}, d).t();
    Tensor bt = tensor({{7.0, 9.0, 11.0}, {8.0, 10.0, 12.0}}, d).t();
    BOOST_TEST(!at.is_contiguous());
    BOOST_TEST(!bt.is_contiguous());
    const std::int64_t copies = detail::blas_operand_copies();
    expect_values(matmul(at, mat_b(d)), {2, 2}, {58, 64, 139, 154}, tol(d));
    expect_values(matmul(mat_a(d), bt), {2, 2}, {58, 64, 139, 154}, tol(d));
    expect_values(matmul(at, bt), {2, 2}, {58, 64, 139, 154}, tol(d));
    // Row/column slices of a wider matrix (leading dimension > number of columns).
    Tensor wide = concat({mat_a(d), full({2, 2}, 100.0, d)}, 1);  // [2,5]
    expect_values(matmul(slice(wide, 1, 0, 3), mat_b(d)), {2, 2}, {58, 64, 139, 154}, tol(d));
    expect_values(matmul(slice(wide, 1, 0, 3).t().t(), bt), {2, 2}, {58, 64, 139, 154}, tol(d));
    // Batched: transpose of the last two axes, and a batch-major permutation.
    Tensor a3t = transpose(batch_a(d).reshape({2, 3, 2}).clone(), 1, 2);
    expect_values(matmul(a3t, batch_b(d)), {2, 2, 2}, {-2, 1, -5, -0.5, 52, 64, 58, 71.5}, tol(d));
    Tensor b3t = transpose(batch_b(d).reshape({2, 2, 3}).clone(), 1, 2);  // [2,3,2]
    expect_values(matmul(batch_a(d), b3t), {2, 2, 2}, {-3.5, 1, -17, 1, 32.5, 64, 46, 91}, tol(d));
    Tensor a3p = permute(batch_a(d).reshape({2, 2, 3}).clone(), {1, 0, 2});  // [2,2,3]
    expect_values(matmul(a3p, batch_b(d)), {2, 2, 2}, {-1, 0.5, -19, -8.5, 26, 32, 62, 77}, tol(d));
    // 3-D transposed · 2-D transposed.
    expect_values(matmul(a3t, bt), {2, 2, 2}, {62, 68, 89, 98, 224, 248, 251, 278}, tol(d));
    BOOST_TEST(detail::blas_operand_copies() == copies);
  }
  // Gradients through transposed operands, also without copies.
  const std::int64_t copies = detail::blas_operand_copies();
  expect_gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0].t(), in[1].t()); },
                   {leaf({3, 2}, -1, 1, 1), leaf({4, 3}, -1, 1, 2)});
  expect_gradcheck(
      [](const std::vector<Tensor>& in) {
        return matmul(transpose(in[0], 1, 2), transpose(in[1], 1, 2));
      },
      {leaf({2, 3, 2}, -1, 1, 3), leaf({2, 4, 3}, -1, 1, 4)});
  expect_gradcheck(
      [](const std::vector<Tensor>& in) { return matmul(transpose(in[0], 1, 2), in[1].t()); },
      {leaf({2, 3, 2}, -1, 1, 5), leaf({4, 3}, -1, 1, 6)});
  BOOST_TEST(detail::blas_operand_copies() == copies);
  // A column slice with a step fits no BLAS layout: it is copied, and still correct.
  // Columns 0 and 2 of [[7,-1,8,-1],[9,-1,10,-1],[11,-1,12,-1]] are B.
  Tensor stepped =
      slice(stack({mat_b(float64), full({3, 2}, -1.0, float64)}, 2).reshape({3, 4}), 1, 0, 4, 2);
  expect_values(matmul(mat_a(float64), stepped), {2, 2}, {58, 64, 139, 154});
  BOOST_TEST(detail::blas_operand_copies() == copies + 1);
  expect_gradcheck(
      [](const std::vector<Tensor>& in) { return matmul(in[0], slice(in[1], 1, 0, 4, 2)); },
      {leaf({2, 3}, -1, 1, 7), leaf({3, 4}, -1, 1, 8)});
}

// K = 1: outer products take xgrad's own loop (detail::outer_rows), not BLAS's small-matrix
// kernel. Each element is one rounded product, so they equal the broadcast multiply exactly:
// 2-D with every transpose layout, batched [B,m,1]·[B,1,n] (the per-sample weight gradients of
// vmap(grad(f))), a shared [m,1] column, a strided column, and an output of 16.8 MB that is
// written with non-temporal stores (outputs of 4 MiB and more), on 1 and 2 threads.
BOOST_AUTO_TEST_CASE(matmul_outer_products_equal_the_broadcast_product) {
  const int saved_threads = get_num_threads();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (Dtype d : kFloatDtypes) {
      manual_seed(5);
      Tensor col = randn({37, 1}, d), row = randn({1, 53}, d);
      Tensor want = col * row;
      BOOST_TEST(same(matmul(col, row), want));
      BOOST_TEST(same(matmul(col.t().clone().t(), row), want));  // transposed layouts
      BOOST_TEST(same(matmul(col, row.t().clone().t()), want));
      Tensor wide = randn({37, 3}, d);  // a column with leading dimension 3
      BOOST_TEST(same(matmul(slice(wide, 1, 1, 2), row), slice(wide, 1, 1, 2) * row));
      Tensor a = randn({6, 300, 1}, d), b = randn({6, 1, 250}, d);
      BOOST_TEST(same(matmul(a, b), a * b));
      Tensor b4 = randn({4, 1, 53}, d);
      BOOST_TEST(same(matmul(col, b4), col * b4));  // shared column
      BOOST_TEST(
          same(matmul(transpose(b4, 1, 2), row), transpose(b4, 1, 2) * row));  // [B,53,1]·[1,n]
    }
    // 64 x 256 x 256 floats = 16.8 MB: the streamed path (rows of 256 floats, 16-byte aligned),
    // and rows of 255 that start off alignment.
    Tensor a = randn({64, 256, 1}), b = randn({64, 1, 256});
    BOOST_TEST(same(matmul(a, b), a * b));
    Tensor c = randn({64, 260, 1}), e = randn({64, 1, 255});
    BOOST_TEST(same(matmul(c, e), c * e));
    Tensor col = randn({1200, 1}), row = randn({1, 1001});  // 4.8 MB, 2-D: streamed too
    BOOST_TEST(same(matmul(col, row), col * row));
  }
  set_num_threads(saved_threads);
}

BOOST_AUTO_TEST_CASE(linear_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = mat_a(d);
    Tensor w =
        tensor({{0.5, -1.0, 2.0}, {1.0, 0.0, -0.5}, {0.25, 0.25, 0.25}, {-2.0, 1.0, 0.0}}, d);
    Tensor b = tensor({0.1, -0.2, 0.3, -0.4}, d);
    expect_values(linear(x, w), {2, 4}, {4.5, -0.5, 1.5, 0, 9, 1, 3.75, -3}, tol(d));
    expect_values(linear(x, w, b), {2, 4}, {4.6, -0.7, 1.8, -0.4, 9.1, 0.8, 4.05, -3.4}, tol(d));
    // [..., in] inputs: 3-D and 1-D.
    expect_values(
        linear(stack({x, neg(x)}), w, b), {2, 2, 4},
        {4.6, -0.7, 1.8, -0.4, 9.1, 0.8, 4.05, -3.4, -4.4, 0.3, -1.2, -0.4, -8.9, -1.2, -3.45, 2.6},
        tol(d));
    expect_values(linear(tensor({1.0, -2.0, 0.5}, d), w, b), {4}, {3.6, 0.55, 0.175, -4.4}, tol(d));
    // A transposed input goes to BLAS as is.
    const std::int64_t copies = detail::blas_operand_copies();
    expect_values(linear(tensor({{1.0, 4.0}, {2.0, 5.0}, {3.0, 6.0}}, d).t(), w, b), {2, 4},
                  {4.6, -0.7, 1.8, -0.4, 9.1, 0.8, 4.05, -3.4}, tol(d));
    BOOST_TEST(detail::blas_operand_copies() == copies);
  }
}

BOOST_AUTO_TEST_CASE(linear_gradcheck) {
  const Fn with_bias = [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); };
  const Fn no_bias = [](const std::vector<Tensor>& in) { return linear(in[0], in[1]); };
  Tensor x = leaf({3, 4}, -1, 1, 1);
  Tensor w = leaf({2, 4}, -1, 1, 2);
  Tensor b = leaf({2}, -1, 1, 3);
  expect_gradcheck(with_bias, {x, w, b});
  expect_gradcheck(no_bias, {x, w});
  expect_gradcheck(with_bias, {leaf({2, 3, 4}, -1, 1, 4), w, b});
  expect_gradcheck(with_bias, {leaf({4}, -1, 1, 5), w, b});
  // Subsets of the inputs requiring grad.
  expect_gradcheck(with_bias, {x.detach(), w, b.detach()});
  expect_gradcheck(with_bias, {x, w.detach(), b});
  expect_gradcheck(with_bias, {x.detach(), w.detach(), b});
  // By value: d sum(y) / db = N per output; d / dw = column sums of x per row.
  Tensor xv = tensor({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}}, float64);
  Tensor wv = tensor({{1.0, -1.0}}, float64).requires_grad_();
  Tensor bv = tensor({0.5}, float64).requires_grad_();
  linear(xv, wv, bv).sum().backward();
  expect_values(bv.grad(), {1}, {3});
  expect_values(wv.grad(), {1, 2}, {9, 12});
}

BOOST_AUTO_TEST_CASE(linear_bias_gradient_is_the_column_sum) {
  // A first-order backward sums the bias's gradient with linear's own kernel (rows added in
  // blocks of 16, in float32 for float32, then in float64); it must equal sum(g, 0) in float64
  // (exactly) and within 1e-6 in float32, for a row count that is not a multiple of 16.
  for (Dtype d : kFloatDtypes) {
    BOOST_TEST_CONTEXT(dtype_name(d)) {
      Tensor x = leaf({203, 7}, -1, 1, 31).detach().to(d).requires_grad_();
      Tensor w = leaf({37, 7}, -1, 1, 32).detach().to(d).requires_grad_();
      Tensor b = leaf({37}, -1, 1, 33).detach().to(d).requires_grad_();
      Tensor g = leaf({203, 37}, -2, 2, 34).detach();
      Tensor y = linear(x, w, b);
      Tensor db = grad({sum(mul(y, g.to(d)))}, {b})[0];
      Tensor want = sum(g, 0);
      expect_values(db, {37}, values_of(want), d == float64 ? 1e-15 : 1e-6);
      // With create_graph the recorded sum runs: the same values.
      Tensor y2 = linear(x, w, b);
      Tensor db2 = grad({sum(mul(y2, g.to(d)))}, {b}, {}, std::nullopt, true)[0];
      expect_values(db2.detach(), {37}, values_of(want), d == float64 ? 1e-15 : 1e-6);
    }
  }
}

BOOST_AUTO_TEST_CASE(matmul_bad_shapes_throw) {
  Tensor a = zeros({64, 784}, float32);
  Tensor b = zeros({256, 784}, float32);
  expect_error_exact([&] { matmul(a, b); },
                     "matmul: shapes [64,784] and [256,784] cannot be multiplied");
  expect_error_exact(
      [&] {
        matmul(zeros({3}), zeros({4, 2}));
      },
      "matmul: shapes [3] and [4,2] cannot be multiplied");
  expect_error([&] { matmul(zeros({2, 3}), zeros({2})); }, {"matmul", "[2,3]", "[2]"});
  expect_error(
      [&] {
        matmul(zeros({2, 2, 3}), zeros({3, 2, 2}));
      },
      {"matmul", "[2,2,3]", "[3,2,2]"});
  expect_error(
      [&] {
        matmul(zeros({2, 2, 3}), zeros({2, 4, 2}));
      },
      {"matmul", "[2,2,3]", "[2,4,2]"});
  expect_error([&] { matmul(zeros({2, 2, 3}), zeros({4, 2})); }, {"matmul", "[2,2,3]", "[4,2]"});
  expect_error(
      [&] {
        matmul(zeros({1, 2, 2, 3}), zeros({3, 2}));
      },
      {"matmul", "[1,2,2,3]", "[3,2]"});
  expect_error([&] { matmul(scalar_tensor(2.0), zeros({2})); }, {"matmul", "[]", "[2]"});
}

BOOST_AUTO_TEST_CASE(linear_bad_shapes_throw) {
  Tensor w = zeros({256, 784}, float32);
  expect_error_exact(
      [&] {
        linear(zeros({64, 100}, float32), w);
      },
      "linear: input [64,100] does not match weight [256,784] (expected input "
      "[N,784])");
  // The caller's shape is named, not a flattened one.
  expect_error(
      [&] {
        linear(zeros({2, 3, 100}, float32), w);
      },
      {"linear", "[2,3,100]", "[256,784]"});
  expect_error([&] { linear(zeros({100}, float32), w); }, {"linear", "[100]", "[256,784]"});
  expect_error([&] { linear(zeros({2, 784}), zeros({784})); }, {"linear", "[2,784]", "[784]"});
  expect_error(
      [&] {
        linear(zeros({2, 3}), zeros({4, 3}), zeros({3}));
      },
      {"linear", "bias [3]", "[4,3]"});
}

BOOST_AUTO_TEST_CASE(mixed_dtypes_throw) {
  expect_error(
      [] {
        matmul(zeros({2, 3}, float32), zeros({3, 2}, float64));
      },
      {"matmul", "float32 [2,3]", "float64 [3,2]"});
  expect_error(
      [] {
        matmul(zeros({3}, float64), zeros({3, 2}, float32));
      },
      {"matmul", "float64", "float32"});
  expect_error([] { matmul(zeros({2, 3}, int64), zeros({3, 2}, int64)); }, {"matmul", "int64"});
  expect_error(
      [] {
        linear(zeros({2, 3}, float32), zeros({4, 3}, float64));
      },
      {"linear", "float32 [2,3]", "float64 [4,3]"});
  expect_error(
      [] {
        linear(zeros({2, 3}, float64), zeros({4, 3}, float64), zeros({4}, float32));
      },
      {"linear", "float64 [2,3]", "float32 [4]"});
}

// f(W) = ‖W·x‖² (a matrix times a vector, reduced with a vector·vector matmul): ∇f = 2(Wx)xᵀ
// and the Hessian-vector product along V is H·V = 2(Vx)xᵀ. Reverse over reverse (create_graph)
// and forward over reverse (the tangent of ∇f when W carries V) must both give it.
BOOST_AUTO_TEST_CASE(create_graph_hessian_of_squared_norm) {
  Tensor W = leaf({3, 4}, -1, 1, 11);
  Tensor x = leaf({4}, -1, 1, 12).detach();
  Tensor V = leaf({3, 4}, -1, 1, 13).detach();
  auto f = [&](const Tensor& w) {
    Tensor y = matmul(w, x);
    return matmul(y, y);
  };
  // 2(Vx)xᵀ by hand.
  const auto vv = values_of(V), xv = values_of(x);
  std::vector<double> hv(12);
  for (int i = 0; i < 3; ++i) {
    double vx = 0;
    for (int k = 0; k < 4; ++k) vx += vv[i * 4 + k] * xv[k];
    for (int j = 0; j < 4; ++j) hv[i * 4 + j] = 2 * vx * xv[j];
  }
  Tensor g = grad({f(W)}, {W}, {}, std::nullopt, /*create_graph=*/true)[0];
  BOOST_TEST(g.requires_grad());
  BOOST_TEST_CONTEXT("reverse over reverse") {
    expect_values(grad({g}, {W}, {V})[0], {3, 4}, hv, 1e-12);
  }
  fwd::dual_level level;
  Tensor gd = grad({f(fwd::make_dual(W, V))}, {W})[0];
  BOOST_TEST_CONTEXT("forward over reverse") {
    expect_values(fwd::unpack_dual(gd).tangent, {3, 4}, hv, 1e-12);
  }
}

// A small nn::Linear: f = Σ Y², Y = X·Wᵀ + b. With dY = U_X·Wᵀ + X·U_Wᵀ + u_b the directional
// derivatives of the gradients are d(∂f/∂X) = 2·dY·W + 2·Y·U_W, d(∂f/∂W) = 2·dYᵀ·X + 2·Yᵀ·U_X
// and d(∂f/∂b) = 2·Σ_rows dY — the mixed second derivatives included.
BOOST_AUTO_TEST_CASE(create_graph_through_a_linear_layer) {
  nn::LinearOptions o;
  o.dtype = float64;
  manual_seed(21);
  nn::Linear lin(4, 3, o);
  Tensor X = leaf({5, 4}, -1, 1, 22);
  Tensor UX = leaf({5, 4}, -1, 1, 23).detach();
  Tensor UW = leaf({3, 4}, -1, 1, 24).detach();
  Tensor Ub = leaf({3}, -1, 1, 25).detach();
  Tensor W = lin.weight, b = lin.bias;
  std::vector<Tensor> expected;
  {
    no_grad guard;
    Tensor Wd = W.detach(), Xd = X.detach();
    Tensor Y = matmul(Xd, Wd.t()) + b.detach();
    Tensor dY = matmul(UX, Wd.t()) + matmul(Xd, UW.t()) + Ub;
    expected = {matmul(dY, Wd) * 2.0 + matmul(Y, UW) * 2.0,
                matmul(dY.t(), Xd) * 2.0 + matmul(Y.t(), UX) * 2.0, sum(dY, 0) * 2.0};
  }
  auto f = [&](const Tensor& x) {
    Tensor y = lin(x);
    return sum(y * y);
  };
  const std::vector<Tensor> wrt{X, W, b};
  auto gs = grad({f(X)}, wrt, {}, std::nullopt, /*create_graph=*/true);
  auto hv = grad(gs, wrt, {UX, UW, Ub});
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST_CONTEXT("reverse over reverse, input " << i) {
      expect_values(hv[i], expected[i].shape(), values_of(expected[i]), 1e-12);
    }
  // Forward over reverse: the parameters carry their directions as tangents while the layer
  // runs (the module's own tensors are swapped for duals of themselves, then restored).
  fwd::dual_level level;
  Tensor Wp = lin.weight, bp = lin.bias;
  lin.weight = fwd::make_dual(Wp, UW);
  lin.bias = fwd::make_dual(bp, Ub);
  auto gd = grad({f(fwd::make_dual(X, UX))}, wrt);
  lin.weight = Wp;
  lin.bias = bp;
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST_CONTEXT("forward over reverse, input " << i) {
      expect_values(fwd::unpack_dual(gd[i]).tangent, expected[i].shape(), values_of(expected[i]),
                    1e-12);
    }
}

BOOST_AUTO_TEST_SUITE_END()
