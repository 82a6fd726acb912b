// Indexing with TensorIndex lists (torch::indexing): x.index({Slice(0, 2), 1, None, Ellipsis}),
// x[i], select, index_put_ and index_put. Reads are views sharing storage; gradients flow back
// into the indexed region (gradcheck); index_put_ writes in place with values checked and its
// errors naming the op, the dimension and its size. Expected values follow Python's x[...]
// on the same arange tensors.
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/ops/tensor_index.hpp"

using namespace xgrad;
using namespace xgrad::indexing;
using xgrad::testing::expect_error;
using xgrad::testing::expect_error_exact;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::leaf;
using xgrad::testing::values_of;
namespace fwd = xgrad::autograd::forward_ad;

namespace {

// x = arange(24).reshape(2, 3, 4) in float64: x[i][j][k] = 12i + 4j + k.
Tensor x234() {
  return arange(24.0, float64).reshape({2, 3, 4});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tensor_index)

// The example: x[0:2, 1, None, ...] on a [2,3,4] tensor -> [2,1,4], a view.
BOOST_AUTO_TEST_CASE(slice_integer_none_ellipsis) {
  Tensor x = x234();
  Tensor v = x.index({Slice(0, 2), 1, None, Ellipsis});
  expect_values(v, {2, 1, 4}, {4, 5, 6, 7, 16, 17, 18, 19});
  BOOST_TEST(v.storage() == x.storage());
  BOOST_TEST(v.offset() == 4);
  BOOST_TEST((v.strides() == Shape{12, 4, 1}));
  // The free function and the method agree.
  expect_values(index(x, {Slice(0, 2), 1, None, Ellipsis}), {2, 1, 4}, values_of(v));
}

BOOST_AUTO_TEST_CASE(slices_with_bounds_steps_and_negatives) {
  Tensor x = x234();
  // x[:, :, ::2]
  expect_values(x.index({Slice(), Slice(), Slice(None, None, 2)}), {2, 3, 2},
                {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22});
  // x[-1, -2:, 1:4:2]
  expect_values(x.index({-1, Slice(-2, None), Slice(1, 4, 2)}), {2, 2}, {17, 19, 21, 23});
  // x[0, 1:100] clamps; x[0, -100:1] clamps; x[0, 2:1] is empty.
  expect_values(x.index({0, Slice(1, 100)}), {2, 4}, {4, 5, 6, 7, 8, 9, 10, 11});
  expect_values(x.index({0, Slice(-100, 1)}), {1, 4}, {0, 1, 2, 3});
  expect_values(x.index({0, Slice(2, 1)}), {0, 4}, {});
  // x[1, :, -1] and x[..., 3]
  expect_values(x.index({1, Slice(), -1}), {3}, {15, 19, 23});
  expect_values(x.index({Ellipsis, 3}), {2, 3}, {3, 7, 11, 15, 19, 23});
  expect_values(x.index({"...", 3}), {2, 3}, {3, 7, 11, 15, 19, 23});
  // x[1, ...] and x[1, ..., None]; an Ellipsis standing for no dimension.
  expect_values(x.index({1, Ellipsis}), {3, 4}, values_of(x.index({1})));
  BOOST_TEST((x.index({1, Ellipsis, None}).shape() == Shape{3, 4, 1}));
  BOOST_TEST((x.index({0, 0, 0, Ellipsis}).shape() == Shape{}));
  BOOST_TEST(x.index({0, 1, 2}).item() == 6.0);
  // Bools: true adds a dimension of size 1, false one of size 0 (as torch).
  BOOST_TEST((x.index({true}).shape() == Shape{1, 2, 3, 4}));
  BOOST_TEST((x.index({false, 0}).shape() == Shape{0, 3, 4}));
  // An empty list is the whole tensor.
  expect_values(x.index({}), {2, 3, 4}, values_of(x));
}

BOOST_AUTO_TEST_CASE(subscript_and_select) {
  Tensor x = x234();
  expect_values(x[1], {3, 4}, {12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23});
  expect_values(x[1][2], {4}, {20, 21, 22, 23});
  BOOST_TEST(x[-1][-1][-1].item() == 23.0);
  BOOST_TEST(x[0][2][1].dim() == 0);
  expect_values(x.select(2, -1), {2, 3}, {3, 7, 11, 15, 19, 23});
  expect_values(select(x, 1, 0), {2, 4}, {0, 1, 2, 3, 12, 13, 14, 15});
  BOOST_TEST(x[1].storage() == x.storage());
}

// Indexing a non-contiguous tensor follows its strides.
BOOST_AUTO_TEST_CASE(index_of_a_transposed_view) {
  Tensor x = arange(12.0, float64).reshape({3, 4}).t();  // [4,3]: x[i][j] = 4j + i
  expect_values(x[1], {3}, {1, 5, 9});
  expect_values(x.index({Slice(1, None, 2), Slice(None, 2)}), {2, 2}, {1, 5, 3, 7});
  expect_values(x.index({Ellipsis, -1}), {4}, {8, 9, 10, 11});
}

BOOST_AUTO_TEST_CASE(views_share_storage_with_the_base) {
  Tensor x = x234();
  Tensor row = x.index({1, Slice(), 2});  // x[1, :, 2] = {14, 18, 22}
  const auto v0 = x.version();
  row.fill_(-1.0);
  BOOST_TEST(x.version() == v0 + 1);  // one counter for the storage
  expect_values(x[1], {3, 4}, {12, 13, -1, 15, 16, 17, -1, 19, 20, 21, -1, 23});
  x[0][0].mul_(10.0);
  expect_values(x[0][0], {4}, {0, 10, 20, 30});
  // A write into the base is seen by the view.
  x.fill_(2.0);
  expect_values(row, {3}, {2, 2, 2});
}

BOOST_AUTO_TEST_CASE(gradients_flow_into_the_indexed_region) {
  Tensor x = leaf({2, 3}, -1, 1, 7);
  Tensor y = x.index({Slice(), 1});  // x[:, 1]
  BOOST_TEST(y.grad_fn()->name() == "index");
  (y * y).sum().backward();
  const auto xv = values_of(x);
  expect_values(x.grad(), {2, 3}, {0, 2 * xv[1], 0, 0, 2 * xv[4], 0});
  Tensor z = leaf({3}, -1, 1, 8);
  BOOST_TEST(z[2].grad_fn()->name() == "select");
  (z[2] * 3.0 + z[0]).backward();
  expect_values(z.grad(), {3}, {1, 0, 3});
}

BOOST_AUTO_TEST_CASE(gradcheck_index_and_subscript) {
  expect_gradcheck(
      [](const auto& v) {
        return v[0].index({Slice(0, 2), 1, None, Ellipsis});
      },
      {leaf({2, 3, 4}, -1, 1, 1)});
  expect_gradcheck(
      [](const auto& v) {
        return v[0].index({-1, Slice(None, None, 2)}) * 2.0;
      },
      {leaf({3, 5}, -1, 1, 2)});
  expect_gradcheck([](const auto& v) { return v[0][1][-1] * v[0][0]; },
                   {leaf({2, 3, 2}, -1, 1, 3)});
  expect_gradcheck(
      [](const auto& v) {
        return v[0].t().index({Ellipsis, 1});
      },
      {leaf({3, 4}, -1, 1, 4)});
  // Overlapping reads add up: x[0:2] + x[1:3].
  expect_gradcheck(
      [](const auto& v) { return v[0].index({Slice(0, 2)}) + v[0].index({Slice(1, 3)}); },
      {leaf({3, 2}, -1, 1, 5)});
}

BOOST_AUTO_TEST_CASE(index_errors_name_the_dimension_and_size) {
  Tensor x = x234();
  expect_error_exact(
      [&] {
        x.index({0, 3});
      },
      "index: index 3 is out of range for dimension 1 with size 3 (tensor of shape "
      "[2,3,4])");
  expect_error_exact(
      [&] {
        x.index({Ellipsis, -5});
      },
      "index: index -5 is out of range for dimension 2 with size 4 (tensor of "
      "shape [2,3,4])");
  expect_error_exact([&] { (void)x[2]; },
                     "select: index 2 is out of range for dimension 0 with size 2 (tensor of "
                     "shape [2,3,4])");
  expect_error([&] { x.index({0, 0, 0, 0}); }, {"index", "too many indices", "[2,3,4]", "4"});
  expect_error([&] { x.index({Ellipsis, 0, Ellipsis}); }, {"index", "one Ellipsis"});
  expect_error([&] { x.index({Slice(None, None, 0)}); }, {"index", "step must be positive", "0"});
  expect_error([&] { x.index({Slice(None, None, -1)}); }, {"index", "step", "-1"});
  expect_error([&] { (void)scalar_tensor(1.0)[0]; }, {"select", "[]"});
  expect_error([&] { x.select(3, 0); }, {"select", "axis 3", "[2,3,4]"});
  expect_error([&] { x.index({"..:"}); }, {"index", "...", "..:"});
}

BOOST_AUTO_TEST_CASE(index_put_values) {
  Tensor x = zeros({3, 4}, float64);
  const auto v0 = x.version();
  // x[1] = 5; x[:, -1] = [1, 2, 3]; x[0, 0:2] = [[7, 8]] (broadcast from [1,2]).
  x.index_put_({1}, 5.0);
  BOOST_TEST(x.version() == v0 + 1);
  x.index_put_({Slice(), -1}, xgrad::tensor({1.0, 2.0, 3.0}, float64));
  x.index_put_({0, Slice(0, 2)}, xgrad::tensor({{7.0, 8.0}}, float64));
  expect_values(x, {3, 4}, {7, 8, 0, 1, 5, 5, 5, 2, 0, 0, 0, 3});
  // A scalar-shaped tensor broadcasts to the region; another dtype is converted.
  x.index_put_({2, Slice(None, 3)}, scalar_tensor(-1.5, float32));
  expect_values(x[2], {4}, {-1.5, -1.5, -1.5, 3});
  // Writes through index_put_ on a view reach the base; the method returns *this.
  Tensor col = x.index({Slice(), 2});
  Tensor& r = col.index_put_({Slice(1, None)}, 9.0);
  BOOST_TEST(&r == &col);
  expect_values(x.index({Slice(), 2}), {3}, {0, 9, 9});
  // Ellipsis and None in the region, into an int64 tensor.
  Tensor i = zeros({2, 2}, int64);
  i.index_put_({Ellipsis, 1, None}, 4.0);
  expect_values(i, {2, 2}, {0, 4, 0, 4});
  // The value may overlap the target: x[0] = x[1] reads before writing.
  Tensor y = arange(6.0, float64).reshape({2, 3});
  y.index_put_({0}, y[1]);
  expect_values(y, {2, 3}, {3, 4, 5, 3, 4, 5});
  index_put_(y, {1, 0}, -2.0);
  BOOST_TEST(y.index({1, 0}).item() == -2.0);
}

BOOST_AUTO_TEST_CASE(index_put_errors) {
  Tensor x = zeros({4, 2}, float64);
  expect_error_exact([&] { x.index_put_({4}, 1.0); },
                     "index_put_: index 4 is out of range for dimension 0 with size 4 (tensor "
                     "of shape [4,2])");
  expect_error_exact(
      [&] {
        x.index_put_({0, -3}, zeros({1}, float64));
      },
      "index_put_: index -3 is out of range for dimension 1 with size 2 (tensor "
      "of shape [4,2])");
  expect_error_exact([&] { x.index_put_({0}, zeros({3}, float64)); },
                     "index_put_: cannot broadcast a value of shape [3] into the indexed region "
                     "of shape [2] (tensor of shape [4,2])");
  expect_error(
      [&] {
        x.index_put_({Slice()}, zeros({2, 4, 2}, float64));
      },
      {"index_put_", "[2,4,2]", "[4,2]"});
  expect_error([&] { x.index_put_({0, 0, 0}, 1.0); }, {"index_put_", "too many indices"});
  BOOST_TEST(values_of(x) == std::vector<double>(8, 0.0));  // nothing was written
  BOOST_TEST(x.version() == 0u);
}

// Like every in-place op, index_put_ is not recorded: refused on tensors that require grad
// unless under no_grad (where it initialises a parameter).
BOOST_AUTO_TEST_CASE(index_put_and_autograd) {
  Tensor w = zeros({2, 3}, float64).requires_grad_();
  expect_error([&] { w.index_put_({0}, 1.0); },
               {"index_put_", "not recorded by autograd", "[2,3]", "no_grad", "index_put"});
  Tensor nonleaf = w * 2.0;
  expect_error([&] { nonleaf.index_put_({0}, 1.0); }, {"index_put_", "requires grad"});
  Tensor plain = zeros({2, 3}, float64);
  Tensor value = ones({3}, float64).requires_grad_();
  expect_error([&] { plain.index_put_({1}, value); }, {"index_put_", "value", "[3]"});
  {
    no_grad guard;
    w.index_put_({1, Slice(1, None)}, xgrad::tensor({2.0, 3.0}, float64));
    plain.index_put_({1}, value);
  }
  expect_values(w, {2, 3}, {0, 0, 0, 0, 2, 3});
  BOOST_TEST(w.is_leaf());
  expect_values(plain, {2, 3}, {0, 0, 0, 1, 1, 1});
}

// The out-of-place index_put is differentiable in both the tensor and the value.
BOOST_AUTO_TEST_CASE(index_put_out_of_place) {
  Tensor x = arange(6.0, float64).reshape({2, 3}).requires_grad_();
  Tensor v = xgrad::tensor({10.0, 20.0}, float64).requires_grad_();
  Tensor y = index_put(x, {Slice(), 1}, v);
  expect_values(y, {2, 3}, {0, 10, 2, 3, 20, 5});
  expect_values(x, {2, 3}, {0, 1, 2, 3, 4, 5});  // x is untouched
  BOOST_TEST(y.grad_fn()->name() == "index_put");
  (y * arange(6.0, float64).reshape({2, 3})).sum().backward();
  expect_values(x.grad(), {2, 3}, {0, 0, 2, 3, 0, 5});
  expect_values(v.grad(), {2}, {1, 4});
  expect_gradcheck(
      [](const auto& a) {
        return index_put(a[0], {Slice(), 1}, a[1]);
      },
      {leaf({2, 3}, -1, 1, 1), leaf({2}, -1, 1, 2)});
  // A broadcast value gets the sum of the region's gradient.
  expect_gradcheck([](const auto& a) { return index_put(a[0], {Slice(0, 2)}, a[1]) * a[0]; },
                   {leaf({3, 2}, -1, 1, 3), leaf({1, 2}, -1, 1, 4)});
  // Leading size-1 dimensions of the value are dropped (torch's setitem): [1,2] into a [2] row.
  expect_gradcheck([](const auto& a) { return index_put(a[0], {0}, a[1]); },
                   {leaf({3, 2}, -1, 1, 5), leaf({1, 2}, -1, 1, 6)});
  expect_error([] { index_put(zeros({2}), {2}, zeros({})); },
               {"index_put", "index 2", "dimension 0", "size 2"});
}

// Second derivatives through index, select and index_put, x [3,4], v [4]:
//   f = Σ x[0:2, 1]³ + Σ x[2]³ + Σ x[None, ..., ::2]³ + Σ index_put(x, {0}, v)².
// Diagonal Hessian: for x, 6x where x[0:2, 1], x[2] or the even columns pick it (once per
// pick) + 2 outside row 0 (index_put overwrote row 0); for v, 2. H·u by reverse over reverse
// and by forward over reverse (the jvp of index_backward and of index_put).
BOOST_AUTO_TEST_CASE(create_graph_hessian_through_index_and_index_put) {
  Tensor x = leaf({3, 4}, -1, 1, 41);
  Tensor v = leaf({4}, -1, 1, 42);
  Tensor ux = leaf({3, 4}, -1, 1, 43).detach();
  Tensor uv = leaf({4}, -1, 1, 44).detach();
  auto f = [](const Tensor& a, const Tensor& b) {
    return sum(pow(a.index({Slice(0, 2), 1}), 3.0)) + sum(pow(a[2], 3.0)) +
           sum(pow(a.index({None, Ellipsis, Slice(None, None, 2)}), 3.0)) +
           sum(pow(index_put(a, {0}, b), 2.0));
  };
  const auto xv = values_of(x), uxv = values_of(ux), uvv = values_of(uv);
  std::vector<double> hx(12), hv(4);
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 4; ++j) {
      const std::size_t e = i * 4 + j;
      const double picks = (i < 2 && j == 1) + (i == 2) + (j % 2 == 0);
      hx[e] = (6 * xv[e] * picks + (i == 0 ? 0.0 : 2.0)) * uxv[e];
    }
  for (std::size_t j = 0; j < 4; ++j) hv[j] = 2 * uvv[j];
  auto gs = grad({f(x, v)}, {x, v}, {}, std::nullopt, /*create_graph=*/true);
  auto h = grad(gs, {x, v}, {ux, uv});
  BOOST_TEST_CONTEXT("reverse over reverse") {
    expect_values(h[0], {3, 4}, hx, 1e-12);
    expect_values(h[1], {4}, hv, 1e-12);
  }
  fwd::dual_level level;
  auto gd = grad({f(fwd::make_dual(x, ux), fwd::make_dual(v, uv))}, {x, v});
  BOOST_TEST_CONTEXT("forward over reverse") {
    expect_values(fwd::unpack_dual(gd[0]).tangent, {3, 4}, hx, 1e-12);
    expect_values(fwd::unpack_dual(gd[1]).tangent, {4}, hv, 1e-12);
  }
}

BOOST_AUTO_TEST_SUITE_END()
