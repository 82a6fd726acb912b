// Indexing ops: embedding, gather, index_select, where and unbind. Hand-computed values in
// both float dtypes, scatter-added gradients with repeated indices, gradcheck in float64,
// strided inputs, and the errors for bad indices and shapes.
#include <vector>

#include "test_util.hpp"
#include "xgrad/ops/indexing.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::leaf;
using xgrad::testing::tol;
using xgrad::testing::values_of;
namespace fwd = xgrad::autograd::forward_ad;

namespace {

Tensor ids(const std::vector<std::int64_t>& v, const Shape& shape) {
  return from_data(v.data(), shape);
}

// [3,4] with x[i][j] = 10·i + j.
Tensor grid(Dtype d) {
  return tensor({{0.0, 1.0, 2.0, 3.0}, {10.0, 11.0, 12.0, 13.0}, {20.0, 21.0, 22.0, 23.0}}, d);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(indexing)

// ---- embedding ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(embedding_looks_up_rows) {
  for (Dtype d : kFloatDtypes) {
    Tensor w = tensor({{0.5, 1.5}, {-1.0, 2.0}, {3.0, -4.0}}, d);
    // [2,2] indices -> [2,2,2].
    Tensor out = embedding(ids({2, 0, 2, 1}, {2, 2}), w);
    BOOST_TEST((out.dtype() == d));
    expect_values(out, {2, 2, 2}, {3, -4, 0.5, 1.5, 3, -4, -1, 2}, tol(d));
    // 0-d index -> [D]; a non-contiguous weight.
    expect_values(embedding(ids({1}, {}), w), {2}, {-1, 2}, tol(d));
    expect_values(embedding(ids({0, 1}, {2}), w.t().contiguous().t()), {2, 2}, {0.5, 1.5, -1, 2},
                  tol(d));
  }
}

BOOST_AUTO_TEST_CASE(embedding_gradient_scatter_adds) {
  for (Dtype d : kFloatDtypes) {
    Tensor w = zeros({4, 2}, d).requires_grad_();
    // Index 2 appears twice: its row gets the sum; row 3 is never used and gets 0.
    Tensor out = embedding(ids({2, 0, 2}, {3}), w);
    BOOST_TEST(out.grad_fn()->name() == "embedding");
    out.backward(tensor({{1.0, 2.0}, {3.0, 4.0}, {10.0, 20.0}}, d));
    expect_values(w.grad(), {4, 2}, {3, 4, 0, 0, 11, 22, 0, 0}, tol(d));
  }
  expect_gradcheck(
      [](const std::vector<Tensor>& in) {
        return embedding(ids({1, 4, 1, 0, 3, 1}, {2, 3}), in[0]);
      },
      {leaf({5, 3})});
}

BOOST_AUTO_TEST_CASE(embedding_errors) {
  Tensor w = zeros({10, 3});
  expect_error(
      [&] {
        embedding(ids({1, 12, 3}, {3}), w);
      },
      {"embedding", "index 12", "position 1", "10 embeddings"});
  expect_error([&] { embedding(ids({-1}, {1}), w); }, {"embedding", "index -1"});
  expect_error([&] { embedding(tensor({1.0}), w); }, {"embedding", "int64", "float32"});
  expect_error([&] { embedding(ids({1}, {1}), zeros({10})); }, {"embedding", "2-D", "[10]"});
  expect_error([&] { embedding(ids({1}, {1}), ids({1, 2}, {1, 2})); }, {"embedding", "int64"});
}

// ---- gather -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(gather_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = grid(d);
    // axis 1: out[i][j] = x[i][index[i][j]].
    expect_values(gather(x, 1, ids({3, 0, 1, 1, 2, 0}, {3, 2})), {3, 2}, {3, 0, 11, 11, 22, 20},
                  tol(d));
    // axis 0: out[i][j] = x[index[i][j]][j]; the index may be smaller than x in other dims.
    expect_values(gather(x, 0, ids({2, 0, 1}, {1, 3})), {1, 3}, {20, 1, 12}, tol(d));
    expect_values(gather(x, -2, ids({2, 0, 1}, {1, 3})), {1, 3}, {20, 1, 12}, tol(d));
    // A transposed (strided) input: xᵀ[i][index] = x[index][i].
    expect_values(gather(x.t(), 1, ids({2, 1, 0, 0}, {4, 1})), {4, 1}, {20, 11, 2, 3}, tol(d));
  }
  // Any dtype: int64 values.
  Tensor xi = ids({5, 6, 7, 8}, {2, 2});
  BOOST_TEST(to_xarray<std::int64_t>(gather(xi, 1, ids({1, 1, 0, 1}, {2, 2}))) ==
             (xt::xarray<std::int64_t>{{6, 6}, {7, 8}}));
}

BOOST_AUTO_TEST_CASE(gather_gradient_scatter_adds) {
  Tensor x = zeros({2, 3}, float64).requires_grad_();
  Tensor out = gather(x, 1, ids({2, 2, 0, 1, 1, 1}, {2, 3}));
  BOOST_TEST(out.grad_fn()->name() == "gather");
  out.backward(tensor({{1.0, 2.0, 4.0}, {1.0, 2.0, 4.0}}, float64));
  expect_values(x.grad(), {2, 3}, {4, 0, 3, 0, 7, 0});
  Tensor xf = zeros({2, 3}, float32).requires_grad_();
  gather(xf, 0, ids({1, 1, 0}, {1, 3})).sum().backward();
  expect_values(xf.grad(), {2, 3}, {0, 0, 1, 1, 1, 0});

  const Tensor index = ids({1, 0, 2, 2, 0, 1, 3, 3, 0, 1, 2, 3}, {2, 3, 2});
  for (std::int64_t axis : {0, 1, 2}) {
    BOOST_TEST_CONTEXT("axis " << axis) {
      // Index values valid for every axis of the [4,4,4] input.
      expect_gradcheck(
          [axis, index](const std::vector<Tensor>& in) { return gather(in[0], axis, index); },
          {leaf({4, 4, 4})});
    }
  }
}

BOOST_AUTO_TEST_CASE(gather_errors) {
  Tensor x = zeros({2, 3});
  expect_error(
      [&] {
        gather(x, 1, ids({0, 3}, {1, 2}));
      },
      {"gather", "index 3", "position 1", "axis 1 of size 3"});
  expect_error([&] { gather(x, 1, ids({0, 1}, {2})); }, {"gather", "dimensions", "[2]", "[2,3]"});
  expect_error(
      [&] {
        gather(x, 1, ids({0, 0, 0}, {3, 1}));
      },
      {"gather", "[3,1]", "larger", "dimension 0"});
  expect_error([&] { gather(x, 2, ids({0}, {1, 1})); }, {"gather", "axis 2", "out of range"});
  expect_error([&] { gather(x, 0, tensor({{0.0}})); }, {"gather", "int64"});
}

// ---- index_select -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(index_select_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = grid(d);
    expect_values(index_select(x, 0, ids({2, 0, 2}, {3})), {3, 4},
                  {20, 21, 22, 23, 0, 1, 2, 3, 20, 21, 22, 23}, tol(d));
    expect_values(index_select(x, 1, ids({3, 1}, {2})), {3, 2}, {3, 1, 13, 11, 23, 21}, tol(d));
    expect_values(index_select(x, -1, ids({0}, {})), {3, 1}, {0, 10, 20}, tol(d));
    expect_values(index_select(x.t(), 0, ids({1}, {1})), {1, 3}, {1, 11, 21}, tol(d));
    expect_values(index_select(x, 0, ids({}, {0})), {0, 4}, {}, tol(d));
  }
  // A middle axis of a 3-D tensor.
  Tensor x3 = arange(0.0, 12.0, 1.0, float64).reshape({2, 3, 2});
  expect_values(index_select(x3, 1, ids({2, 0}, {2})), {2, 2, 2}, {4, 5, 0, 1, 10, 11, 6, 7});
}

BOOST_AUTO_TEST_CASE(index_select_gradient_index_adds) {
  Tensor x = zeros({3, 2}, float64).requires_grad_();
  Tensor out = index_select(x, 0, ids({1, 1, 0}, {3}));
  BOOST_TEST(out.grad_fn()->name() == "index_select");
  out.backward(tensor({{1.0, 2.0}, {10.0, 20.0}, {5.0, 6.0}}, float64));
  expect_values(x.grad(), {3, 2}, {5, 6, 11, 22, 0, 0});
  for (std::int64_t axis : {0, 1, 2}) {
    BOOST_TEST_CONTEXT("axis " << axis) {
      expect_gradcheck(
          [axis](const std::vector<Tensor>& in) {
            return index_select(in[0], axis, ids({2, 0, 2, 1}, {4}));
          },
          {leaf({3, 3, 3})});
    }
  }
}

BOOST_AUTO_TEST_CASE(index_select_errors) {
  Tensor x = zeros({2, 3});
  expect_error(
      [&] {
        index_select(x, 1, ids({0, 3}, {2}));
      },
      {"index_select", "index 3", "position 1", "axis 1 of size 3"});
  expect_error([&] { index_select(x, 0, ids({0, 1}, {1, 2})); }, {"index_select", "1-D", "[1,2]"});
  expect_error([&] { index_select(x, 0, tensor({0.0})); }, {"index_select", "int64"});
  expect_error([&] { index_select(x, -3, ids({0}, {1})); }, {"index_select", "axis -3"});
}

// ---- where --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(where_values_broadcast) {
  for (Dtype d : kFloatDtypes) {
    Tensor a = tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, d);
    Tensor b = tensor({-1.0, -2.0, -3.0}, d);
    Tensor cond = gt(a, tensor({{2.5}, {4.5}}, d));  // [[F,F,T],[F,T,T]]
    expect_values(where(cond, a, b), {2, 3}, {-1, -2, 3, -1, 5, 6}, tol(d));
    // cond [2,1], a [3], b 0-d -> [2,3].
    Tensor c21 = gt(tensor({{1.0}, {-1.0}}, d), zeros({1}, d));
    expect_values(where(c21, b, scalar_tensor(7.0, d)), {2, 3}, {-1, -2, -3, 7, 7, 7}, tol(d));
    // Strided operands.
    expect_values(where(cond.t(), a.t(), zeros({1}, d)), {3, 2}, {0, 0, 0, 5, 3, 6}, tol(d));
  }
  Tensor i = where(gt(tensor({1.0, -1.0}), zeros({2})), ids({1, 2}, {2}), ids({3, 4}, {2}));
  BOOST_TEST((i.dtype() == int64));
  BOOST_TEST(to_xarray<std::int64_t>(i) == (xt::xarray<std::int64_t>{1, 4}));
}

BOOST_AUTO_TEST_CASE(where_gradient) {
  Tensor a = tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, float64).requires_grad_();
  Tensor b = tensor({-1.0, -2.0, -3.0}, float64).requires_grad_();
  Tensor cond = gt(a.detach(), tensor({{2.5}, {4.5}}, float64));
  Tensor out = where(cond, a, b);
  BOOST_TEST(out.grad_fn()->name() == "where");
  out.backward(tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, float64));
  expect_values(a.grad(), {2, 3}, {0, 0, 3, 0, 5, 6});
  expect_values(b.grad(), {3}, {5, 2, 0});  // summed over the broadcast rows

  Tensor c = gt(leaf({2, 3, 4}, -1, 1, 11).detach(), zeros({1}, float64));
  expect_gradcheck([c](const std::vector<Tensor>& in) { return where(c, in[0], in[1]); },
                   {leaf({2, 3, 4}), leaf({3, 1}, -1, 1, 2)});
  expect_gradcheck([c](const std::vector<Tensor>& in) { return where(c, in[0], in[1]); },
                   {leaf({4}), leaf({2, 1, 4}, -1, 1, 3)});
}

BOOST_AUTO_TEST_CASE(where_errors) {
  Tensor a = zeros({2, 3});
  expect_error([&] { where(a, a, a); }, {"where", "bool", "float32"});
  expect_error([&] { where(gt(a, a), a, zeros({2, 3}, float64)); }, {"where", "same dtype"});
  expect_error([&] { where(gt(a, a), a, zeros({4})); }, {"where", "[2,3]", "[4]", "broadcast"});
}

// ---- unbind -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(unbind_values_are_views) {
  for (Dtype d : kFloatDtypes) {
    Tensor x = grid(d);
    std::vector<Tensor> rows = unbind(x);
    BOOST_REQUIRE_EQUAL(rows.size(), 3u);
    expect_values(rows[1], {4}, {10, 11, 12, 13}, tol(d));
    BOOST_TEST(rows[2].storage() == x.storage());
    std::vector<Tensor> cols = unbind(x, -1);
    BOOST_REQUIRE_EQUAL(cols.size(), 4u);
    expect_values(cols[3], {3}, {3, 13, 23}, tol(d));
  }
  expect_error([] { unbind(scalar_tensor(1.0)); }, {"unbind", "at least one dimension"});
  expect_error([] { unbind(zeros({2}), 1); }, {"unbind", "axis 1"});
}

BOOST_AUTO_TEST_CASE(unbind_gradient_is_one_node) {
  Tensor x = leaf({3, 2});
  std::vector<Tensor> parts = unbind(x, 0);
  BOOST_TEST(parts[0].grad_fn() == parts[2].grad_fn());
  BOOST_TEST(parts[1].output_nr() == 1u);
  // Part 1 unused: its slice of the gradient is zero.
  (parts[0] * 2.0 + parts[2]).sum().backward();
  expect_values(x.grad(), {3, 2}, {2, 2, 0, 0, 1, 1});
  for (std::int64_t axis : {0, 1, 2}) {
    BOOST_TEST_CONTEXT("axis " << axis) {
      expect_gradcheck(
          [axis](const std::vector<Tensor>& in) {
            std::vector<Tensor> p = unbind(in[0], axis);
            Tensor acc = p[0] * p[0];
            for (std::size_t i = 1; i < p.size(); ++i) acc = acc + p[i] * static_cast<double>(i);
            return acc;
          },
          {leaf({2, 3, 4})});
    }
  }
}

// Second derivatives through every op of the file, with repeated indices:
//   f(x, W) = Σ gather(x, 1, I)³ + Σ index_select(x, 0, J)² + Σ_k (k+1)·Σ unbind(x, 1)[k]³
//           + Σ where(c, x, x/2)³ + Σ embedding(ids, W)³.
// The terms act elementwise, so the Hessian is diagonal: for x, 6·x·(times gather picks it)
// + 2·(times index_select picks its row) + 6·(j+1)·x + 6·x·w³ (w = 1 where c, else 1/2); for
// W, 6·W·(times ids names its row). H·u is checked by reverse over reverse (create_graph) and
// by forward over reverse (which runs the jvp of gather_backward, index_select_backward,
// embedding_backward, stack and where).
BOOST_AUTO_TEST_CASE(create_graph_hessian_through_indexing_ops) {
  Tensor x = leaf({3, 4}, -1, 1, 31);
  Tensor W = leaf({5, 2}, -1, 1, 32);
  Tensor ux = leaf({3, 4}, -1, 1, 33).detach();
  Tensor uW = leaf({5, 2}, -1, 1, 34).detach();
  const std::vector<std::int64_t> I = {0, 0, 2, 1, 3, 3}, J = {0, 2, 2}, E = {1, 3, 1, 0};
  const std::vector<bool> cv = {true, false, true, true, false, false,
                                true, false, true, true, true,  false};
  Tensor c = empty({3, 4}, Dtype::boolean);
  for (std::size_t i = 0; i < cv.size(); ++i) c.data_ptr<bool>()[i] = cv[i];
  auto f = [&](const Tensor& a, const Tensor& w) {
    Tensor r = sum(pow(gather(a, 1, ids(I, {3, 2})), 3.0)) +
               sum(pow(index_select(a, 0, ids(J, {3})), 2.0));
    auto cols = unbind(a, 1);
    for (std::size_t k = 0; k < cols.size(); ++k)
      r = r + sum(pow(cols[k], 3.0)) * static_cast<double>(k + 1);
    r = r + sum(pow(where(c, a, a * 0.5), 3.0));
    return r + sum(pow(embedding(ids(E, {2, 2}), w), 3.0));
  };
  // Expected H·u, element by element.
  const auto xv = values_of(x), Wv = values_of(W), uxv = values_of(ux), uWv = values_of(uW);
  std::vector<double> hx(12), hW(10);
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 4; ++j) {
      const std::size_t e = i * 4 + j;
      double picks = 0, rows = 0;
      for (std::size_t k = 0; k < 2; ++k) picks += I[i * 2 + k] == static_cast<std::int64_t>(j);
      for (auto r : J) rows += r == static_cast<std::int64_t>(i);
      const double w3 = cv[e] ? 1.0 : 0.125;
      hx[e] =
          (6 * xv[e] * picks + 2 * rows + 6 * static_cast<double>(j + 1) * xv[e] + 6 * xv[e] * w3) *
          uxv[e];
    }
  for (std::size_t v = 0; v < 5; ++v) {
    double n = 0;
    for (auto r : E) n += r == static_cast<std::int64_t>(v);
    for (std::size_t d = 0; d < 2; ++d) hW[v * 2 + d] = 6 * Wv[v * 2 + d] * n * uWv[v * 2 + d];
  }
  auto gs = grad({f(x, W)}, {x, W}, {}, std::nullopt, /*create_graph=*/true);
  auto hv = grad(gs, {x, W}, {ux, uW});
  BOOST_TEST_CONTEXT("reverse over reverse") {
    expect_values(hv[0], {3, 4}, hx, 1e-12);
    expect_values(hv[1], {5, 2}, hW, 1e-12);
  }
  fwd::dual_level level;
  auto gd = grad({f(fwd::make_dual(x, ux), fwd::make_dual(W, uW))}, {x, W});
  BOOST_TEST_CONTEXT("forward over reverse") {
    expect_values(fwd::unpack_dual(gd[0]).tangent, {3, 4}, hx, 1e-12);
    expect_values(fwd::unpack_dual(gd[1]).tangent, {5, 2}, hW, 1e-12);
  }
}

BOOST_AUTO_TEST_SUITE_END()
