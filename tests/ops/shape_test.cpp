// Shape ops: reshape/view, transpose/permute/t, flatten, squeeze/unsqueeze, slice, concat,
// stack, expand, contiguous/clone, to(dtype). Values in float64 and float32, gradcheck in
// float64, memory sharing of views, and the error messages of bad input.
#include <string>

#include "test_util.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_error_exact;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::leaf;

namespace {

// 0, 1, 2, ... in the given shape and dtype (a fresh contiguous tensor).
Tensor iota(const Shape& shape, Dtype d = float64) {
  return arange(static_cast<double>(shape_numel(shape)), d).reshape(shape).clone();
}

// gradcheck of an op that returns a view of its input. The op's output is cloned: gradcheck
// perturbs its inputs in place and would otherwise see the perturbation through the view.
void expect_view_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                           const std::vector<Tensor>& inputs) {
  expect_gradcheck([&](const std::vector<Tensor>& in) { return f(in).clone(); }, inputs);
}

// H·u for a scalar f, two ways, both checked against `expected`: reverse over reverse (the
// gradient of <∇f, u>, through create_graph) and forward over reverse (the tangent of ∇f when
// x carries u: runs the jvp rules of the backward's own ops, e.g. slice_backward's).
void expect_hvp(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& u,
                const std::vector<double>& expected, double tol = 1e-12) {
  Tensor xl = x.detach().clone().requires_grad_();
  Tensor g = grad({f(xl)}, {xl}, {}, std::nullopt, /*create_graph=*/true)[0];
  BOOST_TEST(g.requires_grad());
  BOOST_TEST_CONTEXT("reverse over reverse") {
    expect_values(grad({g}, {xl}, {u})[0], x.shape(), expected, tol);
  }
  autograd::forward_ad::dual_level level;
  Tensor gd = grad({f(autograd::forward_ad::make_dual(xl, u))}, {xl})[0];
  Tensor t = autograd::forward_ad::unpack_dual(gd).tangent;
  BOOST_TEST_CONTEXT("forward over reverse") {
    BOOST_REQUIRE(t.defined());
    expect_values(t, x.shape(), expected, tol);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shape)

// f(x) = Σ over two stacked copies of w³, where w rearranges the columns [x0, x1, x3, x3] of
// x (slice, expand, concat, reshape, permute, a transposed copy, squeeze/unsqueeze): f =
// 2·Σ_i (x_i0³ + x_i1³ + 2·x_i3³), so H = diag(12·x_i0, 12·x_i1, 0, 24·x_i3).
BOOST_AUTO_TEST_CASE(create_graph_hessian_through_shape_ops) {
  Tensor x = leaf({3, 4}, -1.0, 1.0, 7);
  Tensor u = leaf({3, 4}, -1.0, 1.0, 8).detach();
  auto f = [](const Tensor& a) {
    Tensor b = a.t().contiguous().t();
    Tensor z = concat({slice(b, 1, 0, 2), expand(slice(b, 1, 3, 4), {3, 2})}, 1);
    Tensor w = permute(reshape(z, {3, 2, 2}), {2, 0, 1});
    Tensor s = stack({w, squeeze(unsqueeze(w, 0), 0).clone()}, 0);
    return sum(pow(flatten(s), 3.0));
  };
  const auto xv = xgrad::testing::values_of(x), uv = xgrad::testing::values_of(u);
  std::vector<double> hu(12);
  const double weight[4] = {12, 12, 0, 24};
  for (std::size_t i = 0; i < 12; ++i) hu[i] = weight[i % 4] * xv[i] * uv[i];
  expect_hvp(f, x, u, hu);
}

// to(): the gradient and its derivative cross the dtype boundary both ways. f(x) =
// Σ (x as float32)³, so H = diag(6x) up to float32 rounding.
BOOST_AUTO_TEST_CASE(create_graph_through_to_dtype) {
  Tensor x = leaf({5}, -1.0, 1.0, 9);
  Tensor u = leaf({5}, -1.0, 1.0, 10).detach();
  auto f = [](const Tensor& a) { return sum(pow(a.to(float32), 3.0)).to(float64); };
  std::vector<double> hu;
  const auto xv = xgrad::testing::values_of(x), uv = xgrad::testing::values_of(u);
  for (std::size_t i = 0; i < 5; ++i) hu.push_back(6 * xv[i] * uv[i]);
  expect_hvp(f, x, u, hu, 1e-5);
}

BOOST_AUTO_TEST_CASE(reshape_values_and_minus_one_inference) {
  for (Dtype d : kFloatDtypes) {
    Tensor a = iota({2, 3}, d);
    Tensor r = reshape(a, {3, 2});
    expect_values(r, {3, 2}, {0, 1, 2, 3, 4, 5});
    BOOST_TEST((r.dtype() == d));
    BOOST_TEST((r.strides() == Shape{2, 1}));
    expect_values(reshape(a, {-1}), {6}, {0, 1, 2, 3, 4, 5});
    expect_values(reshape(a, {3, -1}), {3, 2}, {0, 1, 2, 3, 4, 5});
    expect_values(reshape(a, {-1, 1, 2}), {3, 1, 2}, {0, 1, 2, 3, 4, 5});
    expect_values(a.reshape({1, 6}), {1, 6}, {0, 1, 2, 3, 4, 5});
    // A non-contiguous input is copied in row-major order of its logical shape.
    Tensor t = transpose(a, 0, 1);
    expect_values(reshape(t, {6}), {6}, {0, 3, 1, 4, 2, 5});
    expect_values(reshape(t, {2, -1}), {2, 3}, {0, 3, 1, 4, 2, 5});
  }
}

BOOST_AUTO_TEST_CASE(reshape_gradcheck) {
  Tensor x = leaf({2, 3});
  expect_view_gradcheck([](const std::vector<Tensor>& in) { return reshape(in[0], {3, -1}); }, {x});
  // Non-contiguous input: the copying path.
  expect_view_gradcheck(
      [](const std::vector<Tensor>& in) { return reshape(transpose(in[0], 0, 1), {6}); }, {x});
  // Backward maps each output position to the right input position.
  Tensor w = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, float64);
  (reshape(transpose(x, 0, 1), {6}) * w).sum().backward();
  expect_values(x.grad(), {2, 3}, {1, 3, 5, 2, 4, 6});
}

BOOST_AUTO_TEST_CASE(reshape_bad_shape_throws) {
  Tensor a = iota({2, 3});
  expect_error_exact(
      [&] {
        reshape(a, {4, 2});
      },
      "reshape: cannot reshape a tensor of shape [2,3] (6 elements) to [4,2]");
  expect_error([&] { reshape(a, {4, -1}); }, {"reshape", "[2,3]", "[4,-1]"});
  expect_error([&] { reshape(a, {-1, -1}); }, {"reshape", "only one dimension can be -1"});
  expect_error([&] { reshape(a, {-2, 3}); }, {"reshape", "[-2,3]"});
  expect_error([&] { view(a, {7}); }, {"view", "[2,3]", "[7]"});
}

BOOST_AUTO_TEST_CASE(view_values_and_non_contiguous_throws) {
  for (Dtype d : kFloatDtypes) {
    Tensor a = iota({2, 3}, d);
    Tensor v = view(a, {3, -1});
    expect_values(v, {3, 2}, {0, 1, 2, 3, 4, 5});
    BOOST_TEST(v.storage() == a.storage());
    expect_values(a.view({6}), {6}, {0, 1, 2, 3, 4, 5});
    // A slice of whole rows is still contiguous, so it can be viewed (with its offset).
    Tensor rows = slice(iota({3, 2}, d), 0, 1, 3);
    expect_values(view(rows, {4}), {4}, {2, 3, 4, 5});
  }
  Tensor a = iota({2, 3});
  expect_error([&] { view(transpose(a, 0, 1), {6}); }, {"view", "[3,2]", "not contiguous"});
  expect_error([&] { view(slice(a, 1, 0, 3, 2), {4}); }, {"view", "[2,2]", "not contiguous"});
  Tensor x = leaf({2, 3});
  expect_view_gradcheck([](const std::vector<Tensor>& in) { return view(in[0], {6}); }, {x});
}

BOOST_AUTO_TEST_CASE(views_share_memory_with_base) {
  Tensor base = iota({2, 3}).requires_grad_();
  Tensor r = reshape(base, {3, 2});
  Tensor tr = transpose(base, 0, 1);
  Tensor sl = slice(base, 1, 0, 3, 2);  // columns 0 and 2
  Tensor sq = unsqueeze(base, 0);
  Tensor ex = expand(slice(base, 0, 0, 1), {3, 3});  // row 0, repeated
  BOOST_TEST(r.storage() == base.storage());
  BOOST_TEST(tr.storage() == base.storage());
  BOOST_TEST(sl.storage() == base.storage());
  const auto v0 = base.version();
  {
    no_grad guard;
    base.mul_(10.0);
  }
  BOOST_TEST(base.version() > v0);
  BOOST_TEST(r.version() == base.version());
  expect_values(r, {3, 2}, {0, 10, 20, 30, 40, 50});
  expect_values(tr, {3, 2}, {0, 30, 10, 40, 20, 50});
  expect_values(sl, {2, 2}, {0, 20, 30, 50});
  expect_values(sq, {1, 2, 3}, {0, 10, 20, 30, 40, 50});
  expect_values(ex, {3, 3}, {0, 10, 20, 0, 10, 20, 0, 10, 20});
  // Writes through a view reach the base.
  {
    no_grad guard;
    sl.mul_(-1.0);
    slice(tr, 0, 1, 2).add_(0.5);  // tr row 1 is base column 1
  }
  expect_values(base, {2, 3}, {0, 10.5, -20, -30, 40.5, -50});
  // reshape of a non-contiguous tensor copies: later writes to the base do not show.
  Tensor copy = reshape(tr, {6});
  BOOST_TEST(copy.storage() != base.storage());
  {
    no_grad guard;
    base.zero_();
  }
  expect_values(copy, {6}, {0, -30, 10.5, 40.5, -20, -50});
  expect_values(r, {3, 2}, {0, 0, 0, 0, 0, 0});
}

BOOST_AUTO_TEST_CASE(transpose_and_permute_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor a = iota({2, 3}, d);
    Tensor t = transpose(a, 0, 1);
    BOOST_TEST(!t.is_contiguous());
    BOOST_TEST((t.strides() == Shape{1, 3}));
    expect_values(t, {3, 2}, {0, 3, 1, 4, 2, 5});
    expect_values(transpose(a, -1, -2), {3, 2}, {0, 3, 1, 4, 2, 5});
    expect_values(transpose(a, 1, 1), {2, 3}, {0, 1, 2, 3, 4, 5});

    Tensor b = iota({2, 3, 4}, d);
    // out[i,j,k] = b[j,k,i]
    Tensor p = permute(b, {2, 0, 1});
    BOOST_TEST((p.strides() == Shape{1, 12, 4}));
    expect_values(p, {4, 2, 3}, {0, 4, 8,  12, 16, 20, 1, 5, 9,  13, 17, 21,
                                 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23});
    // Negative dims, and a permutation of a permutation.
    expect_values(
        permute(p, {-2, -1, -3}), {2, 3, 4},
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23});
    expect_values(transpose(b, 0, 2), {4, 3, 2}, {0, 12, 4, 16, 8,  20, 1, 13, 5, 17, 9,  21,
                                                  2, 14, 6, 18, 10, 22, 3, 15, 7, 19, 11, 23});
  }
}

BOOST_AUTO_TEST_CASE(transpose_and_permute_gradcheck) {
  Tensor x = leaf({2, 3, 4});
  expect_view_gradcheck([](const std::vector<Tensor>& in) { return transpose(in[0], 0, 2); }, {x});
  expect_view_gradcheck(
      [](const std::vector<Tensor>& in) {
        return permute(in[0], {1, 2, 0});
      },
      {x});
  expect_view_gradcheck(
      [](const std::vector<Tensor>& in) {
        return permute(transpose(in[0], 1, 2), {2, 0, 1});
      },
      {x});
  // The weighted sum pins the backward mapping down exactly.
  Tensor y = leaf({2, 3});
  Tensor w = tensor({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}}, float64);
  (transpose(y, 0, 1) * w).sum().backward();
  expect_values(y.grad(), {2, 3}, {1, 3, 5, 2, 4, 6});
}

BOOST_AUTO_TEST_CASE(permute_bad_dims_throw) {
  Tensor b = iota({2, 3, 4});
  expect_error([&] { permute(b, {0, 1}); }, {"permute", "[2,3,4]"});
  expect_error([&] { permute(b, {0, 1, 1}); }, {"permute", "not a permutation", "[2,3,4]"});
  expect_error([&] { permute(b, {0, 1, 3}); }, {"permute", "axis 3", "[2,3,4]"});
}

BOOST_AUTO_TEST_CASE(t_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor a = tensor({{1.5, -2.0, 3.25}, {4.0, 0.5, -6.0}}, d);
    expect_values(a.t(), {3, 2}, {1.5, 4.0, -2.0, 0.5, 3.25, -6.0});
    expect_values(a.t().t(), {2, 3}, {1.5, -2.0, 3.25, 4.0, 0.5, -6.0});
    BOOST_TEST(a.t().storage() == a.storage());
  }
  Tensor x = leaf({3, 2});
  expect_view_gradcheck([](const std::vector<Tensor>& in) { return in[0].t(); }, {x});
  expect_error([] { iota({2, 3, 4}).t(); }, {"t:", "2-D", "[2,3,4]"});
  expect_error([] { iota({4}).t(); }, {"t:", "[4]"});
}

BOOST_AUTO_TEST_CASE(flatten_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor a = iota({2, 3, 4}, d);
    std::vector<double> all(24);
    for (int i = 0; i < 24; ++i) all[static_cast<std::size_t>(i)] = i;
    expect_values(flatten(a), {24}, all);
    expect_values(flatten(a, 1), {2, 12}, all);
    expect_values(flatten(a, 0, 1), {6, 4}, all);
    expect_values(flatten(a, -2, -1), {2, 12}, all);
    expect_values(flatten(a, 1, 1), {2, 3, 4}, all);
    expect_values(a.flatten(), {24}, all);
    // 0-d flattens to one element; a non-contiguous input flattens in logical order.
    expect_values(flatten(scalar_tensor(2.5, d)), {1}, {2.5});
    expect_values(flatten(transpose(iota({2, 3}, d), 0, 1)), {6}, {0, 3, 1, 4, 2, 5});
  }
  Tensor x = leaf({2, 3, 2});
  expect_view_gradcheck([](const std::vector<Tensor>& in) { return flatten(in[0], 1); }, {x});
  expect_view_gradcheck(
      [](const std::vector<Tensor>& in) { return flatten(transpose(in[0], 0, 2)); }, {x});
  expect_error([&] { flatten(x, 2, 1); }, {"flatten", "start axis 2", "end axis 1"});
  expect_error([&] { flatten(x, 0, 3); }, {"flatten", "axis 3", "[2,3,2]"});
}

BOOST_AUTO_TEST_CASE(squeeze_and_unsqueeze_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor a = iota({2, 1, 3}, d);
    expect_values(squeeze(a, 1), {2, 3}, {0, 1, 2, 3, 4, 5});
    expect_values(squeeze(a, -2), {2, 3}, {0, 1, 2, 3, 4, 5});
    expect_values(squeeze(iota({1, 2, 1, 3, 1}, d)), {2, 3}, {0, 1, 2, 3, 4, 5});
    expect_values(squeeze(iota({1, 1}, d)), {}, {0});
    expect_values(unsqueeze(iota({2, 3}, d), 0), {1, 2, 3}, {0, 1, 2, 3, 4, 5});
    expect_values(unsqueeze(iota({2, 3}, d), 1), {2, 1, 3}, {0, 1, 2, 3, 4, 5});
    expect_values(unsqueeze(iota({2, 3}, d), -1), {2, 3, 1}, {0, 1, 2, 3, 4, 5});
    expect_values(unsqueeze(iota({2, 3}, d), 2), {2, 3, 1}, {0, 1, 2, 3, 4, 5});
    expect_values(unsqueeze(scalar_tensor(4.0, d), 0), {1}, {4});
    // On a non-contiguous tensor the other strides are kept.
    Tensor t = unsqueeze(transpose(iota({2, 3}, d), 0, 1), 1);
    expect_values(t, {3, 1, 2}, {0, 3, 1, 4, 2, 5});
    expect_values(squeeze(t, 1), {3, 2}, {0, 3, 1, 4, 2, 5});
  }
  Tensor x = leaf({2, 1, 3});
  expect_view_gradcheck([](const std::vector<Tensor>& in) { return squeeze(in[0], 1); }, {x});
  expect_view_gradcheck([](const std::vector<Tensor>& in) { return squeeze(in[0]); }, {x});
  expect_view_gradcheck([](const std::vector<Tensor>& in) { return unsqueeze(in[0], -1); }, {x});
  expect_view_gradcheck(
      [](const std::vector<Tensor>& in) { return unsqueeze(transpose(in[0], 0, 2), 1); }, {x});
  expect_error_exact([&] { squeeze(x, 0); }, "squeeze: axis 0 of shape [2,1,3] has size 2, not 1");
  expect_error([&] { squeeze(x, 3); }, {"squeeze", "axis 3", "[2,1,3]"});
  expect_error([&] { unsqueeze(x, 4); }, {"unsqueeze", "axis 4", "[2,1,3]"});
  expect_error([&] { unsqueeze(x, -5); }, {"unsqueeze", "axis -5", "[2,1,3]"});
}

BOOST_AUTO_TEST_CASE(slice_values_with_step_and_negative_indices) {
  for (Dtype d : kFloatDtypes) {
    Tensor a = iota({10}, d);
    Tensor s = slice(a, 0, 2, 9, 3);
    expect_values(s, {3}, {2, 5, 8});
    BOOST_TEST((s.strides() == Shape{3}));
    BOOST_TEST(s.offset() == 2);
    expect_values(slice(a, 0, -3, 10), {3}, {7, 8, 9});
    expect_values(slice(a, 0, 1, -1, 4), {2}, {1, 5});
    expect_values(slice(a, -1, -4, -1), {3}, {6, 7, 8});
    expect_values(slice(a, 0, -100, 100, 4), {3}, {0, 4, 8});  // clamped, as Python slices
    expect_values(slice(a, 0, 7, 3), {0}, {});                 // empty when end <= start
    expect_values(slice(a, 0, 10, 20), {0}, {});

    Tensor m = iota({3, 4}, d);
    expect_values(slice(m, 1, 1, 4, 2), {3, 2}, {1, 3, 5, 7, 9, 11});
    expect_values(slice(m, -1, -2, 4), {3, 2}, {2, 3, 6, 7, 10, 11});
    expect_values(slice(m, 0, 1, 3), {2, 4}, {4, 5, 6, 7, 8, 9, 10, 11});
    expect_values(slice(m, 0, 0, 3, 2), {2, 4}, {0, 1, 2, 3, 8, 9, 10, 11});
    // Slice of a slice of a transposed tensor.
    expect_values(slice(slice(m.t(), 0, 1, 4), 1, 1, 3), {3, 2}, {5, 9, 6, 10, 7, 11});
  }
}

BOOST_AUTO_TEST_CASE(slice_gradcheck) {
  Tensor x = leaf({3, 5});
  expect_view_gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], 1, -4, 5, 2); },
                        {x});
  expect_view_gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], 0, 1, -1); }, {x});
  expect_view_gradcheck([](const std::vector<Tensor>& in) { return slice(in[0].t(), 0, 0, 5, 3); },
                        {x});
  // Positions not taken by the slice get a zero gradient.
  Tensor y = leaf({6});
  slice(y, 0, -5, 6, 2).sum().backward();
  expect_values(y.grad(), {6}, {0, 1, 0, 1, 0, 1});
}

BOOST_AUTO_TEST_CASE(slice_bad_input_throws) {
  Tensor m = iota({3, 4});
  expect_error([&] { slice(m, 2, 0, 1); }, {"slice", "axis 2", "[3,4]"});
  expect_error([&] { slice(m, -3, 0, 1); }, {"slice", "axis -3", "[3,4]"});
  expect_error([&] { slice(m, 0, 0, 3, 0); }, {"slice", "step", "0"});
  expect_error([&] { slice(m, 0, 3, 0, -1); }, {"slice", "step", "-1"});
}

BOOST_AUTO_TEST_CASE(concat_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor a = tensor({{1.0, 2.0}, {3.0, 4.0}}, d);
    Tensor b = tensor({{5.0, 6.0}}, d);
    Tensor c = tensor({7.0, 8.0}, d).reshape({2, 1});
    expect_values(concat({a, b}, 0), {3, 2}, {1, 2, 3, 4, 5, 6});
    expect_values(concat({a, c, a}, 1), {2, 5}, {1, 2, 7, 1, 2, 3, 4, 8, 3, 4});
    expect_values(concat({c, a}, -1), {2, 3}, {7, 1, 2, 8, 3, 4});
    expect_values(concat({a}, 0), {2, 2}, {1, 2, 3, 4});
    // Non-contiguous parts.
    expect_values(concat({a.t(), b}, 0), {3, 2}, {1, 3, 2, 4, 5, 6});
    Tensor out = concat({a, b}, 0);
    BOOST_TEST(out.storage() != a.storage());  // concat copies
    BOOST_TEST((out.dtype() == d));
  }
}

BOOST_AUTO_TEST_CASE(concat_gradcheck) {
  Tensor a = leaf({2, 3}, -1, 1, 1);
  Tensor b = leaf({1, 3}, -1, 1, 2);
  Tensor c = leaf({2, 2}, -1, 1, 3);
  expect_gradcheck([](const std::vector<Tensor>& in) { return concat({in[0], in[1]}, 0); }, {a, b});
  expect_gradcheck(
      [](const std::vector<Tensor>& in) {
        return concat({in[0], in[1], in[0]}, -1);
      },
      {a, c});
  // Only some inputs require grad.
  Tensor k = iota({1, 3});
  expect_gradcheck([](const std::vector<Tensor>& in) { return concat({in[1], in[0]}, 0); }, {a, k});
}

BOOST_AUTO_TEST_CASE(concat_bad_input_throws) {
  Tensor a = iota({2, 3});
  Tensor b = iota({2, 4});
  expect_error_exact(
      [&] {
        concat({a, b}, 0);
      },
      "concat: tensor 1 has shape [2,4], which does not match [2,3] outside axis 0");
  expect_error([&] { concat({a, iota({3})}, 0); }, {"concat", "[3]", "[2,3]"});
  expect_error([&] { concat({a, b}, 2); }, {"concat", "axis 2", "[2,3]"});
  expect_error([&] { concat({}, 0); }, {"concat", "at least one"});
  expect_error(
      [&] {
        concat({a, iota({2, 3}, float32)}, 0);
      },
      {"concat", "float64 [2,3]", "float32 [2,3]"});
}

BOOST_AUTO_TEST_CASE(stack_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor a = tensor({1.0, 2.0, 3.0}, d);
    Tensor b = tensor({4.0, 5.0, 6.0}, d);
    expect_values(stack({a, b}), {2, 3}, {1, 2, 3, 4, 5, 6});
    expect_values(stack({a, b}, 1), {3, 2}, {1, 4, 2, 5, 3, 6});
    expect_values(stack({a, b, a}, -1), {3, 3}, {1, 4, 1, 2, 5, 2, 3, 6, 3});
    expect_values(stack({scalar_tensor(1.5, d), scalar_tensor(-2.0, d)}), {2}, {1.5, -2.0});
    Tensor m = iota({2, 2}, d);
    expect_values(stack({m, m.t()}, 1), {2, 2, 2}, {0, 1, 0, 2, 2, 3, 1, 3});
  }
  Tensor x = leaf({2, 3}, -1, 1, 1);
  Tensor y = leaf({2, 3}, -1, 1, 2);
  expect_gradcheck([](const std::vector<Tensor>& in) { return stack({in[0], in[1]}, 1); }, {x, y});
  expect_gradcheck(
      [](const std::vector<Tensor>& in) {
        return stack({in[1], in[0], in[1]}, -1);
      },
      {x, y});
  expect_error([&] { stack({x, iota({3, 2})}); }, {"stack", "[3,2]", "[2,3]"});
  expect_error([&] { stack({x, y}, 3); }, {"stack", "axis 3", "[2,3]"});
  expect_error([&] { stack({}); }, {"stack", "at least one"});
  expect_error([&] { stack({iota({2}), iota({2}, float32)}); }, {"stack", "float64", "float32"});
}

BOOST_AUTO_TEST_CASE(expand_values) {
  for (Dtype d : kFloatDtypes) {
    Tensor col = tensor({1.0, 2.0, 3.0}, d).reshape({3, 1});
    Tensor e = expand(col, {3, 4});
    expect_values(e, {3, 4}, {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3});
    BOOST_TEST(e.storage() == col.storage());
    BOOST_TEST(e.strides()[1] == 0);
    Tensor row = tensor({1.0, -2.0, 0.5}, d);
    expect_values(expand(row, {2, 3}), {2, 3}, {1, -2, 0.5, 1, -2, 0.5});
    expect_values(expand(row, {2, 1, 3}), {2, 1, 3}, {1, -2, 0.5, 1, -2, 0.5});
    expect_values(expand(scalar_tensor(7.0, d), {2, 2}), {2, 2}, {7, 7, 7, 7});
    expect_values(expand(row, {3}), {3}, {1, -2, 0.5});
  }
  Tensor c = leaf({3, 1});
  expect_view_gradcheck(
      [](const std::vector<Tensor>& in) {
        return expand(in[0], {2, 3, 4});
      },
      {c});
  // The gradient is summed over the broadcast positions.
  Tensor r = leaf({1, 3});
  Tensor w = tensor({{1.0, 2.0, 3.0}, {10.0, 20.0, 30.0}}, float64);
  (expand(r, {2, 3}) * w).sum().backward();
  expect_values(r.grad(), {1, 3}, {11, 22, 33});
  expect_error([&] { expand(r, {2, 4}); }, {"expand", "[1,3]", "[2,4]"});
  expect_error([&] { expand(iota({2, 3}), {3}); }, {"expand", "[2,3]", "[3]"});
}

BOOST_AUTO_TEST_CASE(contiguous_and_clone) {
  for (Dtype d : kFloatDtypes) {
    Tensor a = tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, d);
    // contiguous() of a contiguous tensor is the tensor itself.
    BOOST_TEST(a.contiguous().storage() == a.storage());
    Tensor t = a.t();
    Tensor c = t.contiguous();
    BOOST_TEST(c.is_contiguous());
    BOOST_TEST(c.storage() != a.storage());
    BOOST_TEST((c.strides() == Shape{2, 1}));
    expect_values(c, {3, 2}, {1, 4, 2, 5, 3, 6});
    expect_values(slice(a, 1, 0, 3, 2).contiguous(), {2, 2}, {1, 3, 4, 6});
    expect_values(expand(tensor({1.0, 2.0}, d), {2, 2}).contiguous(), {2, 2}, {1, 2, 1, 2});
    // clone always copies: writing to the clone leaves the original alone.
    Tensor k = a.clone();
    BOOST_TEST(k.storage() != a.storage());
    k.fill_(0.0);
    expect_values(k, {2, 3}, {0, 0, 0, 0, 0, 0});
    expect_values(a, {2, 3}, {1, 2, 3, 4, 5, 6});
    expect_values(t.clone(), {3, 2}, {1, 4, 2, 5, 3, 6});
  }
  Tensor x = leaf({2, 3});
  expect_gradcheck([](const std::vector<Tensor>& in) { return in[0].t().contiguous(); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return in[0].clone(); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], 1, 0, 3, 2).clone(); },
                   {x});
  Tensor y = x.t().contiguous();
  BOOST_REQUIRE(y.grad_fn() != nullptr);
  BOOST_TEST(y.grad_fn()->name() == "contiguous");
  BOOST_TEST(x.clone().grad_fn()->name() == "clone");
}

BOOST_AUTO_TEST_CASE(to_dtype_values) {
  Tensor a = tensor({1.5, -2.25, 3.0}, float64);
  BOOST_TEST(a.to(float64).storage() == a.storage());  // same dtype: no copy
  Tensor f = a.to(float32);
  BOOST_TEST((f.dtype() == float32));
  expect_values(f, {3}, {1.5, -2.25, 3.0});
  Tensor p = tensor({0.1, 1.0 / 3.0}, float64).to(float32);
  expect_values(p, {2}, {0.1, 1.0 / 3.0}, 1e-6);
  BOOST_TEST(p.data_ptr<float>()[0] == 0.1f);
  BOOST_TEST((p.to(float64).dtype() == float64));
  BOOST_TEST(p.to(float64).data_ptr<double>()[1] == static_cast<double>(1.0f / 3.0f));
  // To integers: truncation toward zero; to bool: nonzero.
  Tensor i = tensor({2.7, -1.9, 0.0}, float32).to(int64);
  BOOST_TEST((i.dtype() == int64));
  BOOST_TEST(i.data_ptr<std::int64_t>()[0] == 2);
  BOOST_TEST(i.data_ptr<std::int64_t>()[1] == -1);
  BOOST_TEST(i.data_ptr<std::int64_t>()[2] == 0);
  expect_values(i.to(float64), {3}, {2, -1, 0});
  Tensor bl = tensor({0.0, -0.5, 3.0}, float64).to(boolean);
  BOOST_TEST(bl.data_ptr<bool>()[0] == false);
  BOOST_TEST(bl.data_ptr<bool>()[1] == true);
  BOOST_TEST(bl.data_ptr<bool>()[2] == true);
  // A non-contiguous source converts in logical order.
  expect_values(iota({2, 3}).t().to(float32), {3, 2}, {0, 3, 1, 4, 2, 5});
}

BOOST_AUTO_TEST_CASE(to_dtype_gradient) {
  // float64 -> float32 -> float64 round trip: values exactly representable in float32 and a
  // power-of-two step, so the finite differences are exact.
  Tensor x = tensor({0.5, -1.25, 3.0, 0.75}, float64).requires_grad_();
  GradcheckResult r =
      gradcheck([](const std::vector<Tensor>& in) { return (in[0].to(float32) * 3.0).to(float64); },
                {x}, 1.0 / 1024, xgrad::testing::kAtol, xgrad::testing::kRtol);
  BOOST_CHECK_MESSAGE(r.ok, r.message);
  // The gradient arrives in the input's dtype.
  Tensor y = x.to(float32);
  BOOST_REQUIRE(y.grad_fn() != nullptr);
  (y * tensor({1.0, 2.0, 3.0, 4.0}, float32)).sum().backward();
  BOOST_REQUIRE(x.grad().defined());
  BOOST_TEST((x.grad().dtype() == float64));
  expect_values(x.grad(), {4}, {1, 2, 3, 4});
  // Conversions to integer types are not differentiable.
  BOOST_TEST(!x.to(int64).requires_grad());
}

BOOST_AUTO_TEST_SUITE_END()
