// max_pool2d, avg_pool2d, adaptive_avg_pool2d: values and gradients against torch
// (tests/data/conv_golden/*.txt, written by tools/make_conv_golden.py) in float64 (1e-10)
// and float32 (relative 1e-4), every derivative (gradcheck, gradgradcheck, forward mode) in
// float64, the backward ops' own derivatives, second derivatives by create_graph against
// closed forms (the pools alone and after a conv2d), max-pool ties / NaN / -inf by value (the
// element torch's CPU kernel picks), and the errors of bad input.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "conv_golden.hpp"
#include "test_util.hpp"
#include "xgrad/ops/conv.hpp"
#include "xgrad/ops/pool.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_golden;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::golden_tol;
using xgrad::testing::GoldenCase;
using xgrad::testing::leaf;
using xgrad::testing::read_golden;
using xgrad::testing::values_of;

namespace {

// Runs every case of `file` through op(input, case) in both dtypes, forward and backward.
void check_golden(const std::string& file,
                  const std::function<Tensor(const Tensor&, const GoldenCase&)>& op) {
  const auto cases = read_golden(file);
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("case " << c.name) {
      for (Dtype d : {float64, float32}) {
        BOOST_TEST_CONTEXT("dtype " << dtype_name(d)) {
          Tensor x = c.tensors.at("input").to(d).detach().requires_grad_();
          Tensor y = op(x, c);
          BOOST_TEST((y.dtype() == d));
          expect_golden(y, c.tensors.at("output"), golden_tol(d));
          y.backward(c.tensors.at("grad_output").to(d));
          expect_golden(x.grad(), c.tensors.at("grad_input"), golden_tol(d));
        }
      }
    }
  }
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// The gradient of pool(x) for the output gradient in[1], recorded (create_graph), as a function
// of (x, grad_output): its derivatives are the pool's second and third ones, and its forward
// mode runs the jvp rules of the backward ops.
Fn pool_grad_fn(std::function<Tensor(const Tensor&)> pool) {
  return [pool](const std::vector<Tensor>& in) {
    enable_grad on;  // gradcheck's finite differences call f under no_grad
    Tensor x = in[0];
    // Under forward mode x is a dual that needs no gradient: make it a leaf to differentiate
    // with respect to (its tangent stays).
    if (!x.requires_grad()) x.requires_grad_();
    return grad({pool(x)}, {x}, {in[1]}, std::nullopt, /*create_graph=*/true)[0];
  };
}

// The flat index (into its H·W plane) of the largest element of each window of a max pool over
// the [N, C, H, W] values v (distinct in each window), planes in order.
std::vector<std::int64_t> window_argmax(const std::vector<double>& v, const Shape& shape,
                                        std::int64_t k, std::int64_t s, std::int64_t p) {
  const std::int64_t H = shape[2], W = shape[3];
  const std::int64_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
  std::vector<std::int64_t> out;
  for (std::int64_t plane = 0; plane < shape[0] * shape[1]; ++plane) {
    for (std::int64_t oh = 0; oh < OH; ++oh) {
      for (std::int64_t ow = 0; ow < OW; ++ow) {
        std::int64_t best = -1;
        for (std::int64_t ih = oh * s - p; ih < oh * s - p + k; ++ih)
          for (std::int64_t iw = ow * s - p; iw < ow * s - p + k; ++iw) {
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            const std::int64_t i = ih * W + iw;
            if (best < 0 || v[static_cast<std::size_t>(plane * H * W + i)] >
                                v[static_cast<std::size_t>(plane * H * W + best)])
              best = i;
          }
        out.push_back(plane * H * W + best);
      }
    }
  }
  return out;
}

// The matrix d(seed·g)/dx, row by row: row j is grad(g, x, e_j) for the one-hot seed e_j.
std::vector<std::vector<double>> jacobian_rows(const Tensor& g, const Tensor& x) {
  std::vector<std::vector<double>> rows;
  for (std::int64_t j = 0; j < g.numel(); ++j) {
    Tensor e = zeros(g.shape(), float64);
    e.data_ptr<double>()[j] = 1.0;
    auto r = grad({g}, {x}, {e}, /*retain_graph=*/true, false, /*allow_unused=*/true)[0];
    rows.push_back(r.defined() ? values_of(r) : std::vector<double>(x.numel(), 0.0));
  }
  return rows;
}

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

}  // namespace

BOOST_AUTO_TEST_SUITE(pool)

BOOST_AUTO_TEST_CASE(max_pool_matches_torch) {
  check_golden("max_pool2d.txt", [](const Tensor& x, const GoldenCase& c) {
    return max_pool2d(x, c.pair("kernel"), c.pair("stride"), c.pair("padding"));
  });
}

BOOST_AUTO_TEST_CASE(avg_pool_matches_torch) {
  check_golden("avg_pool2d.txt", [](const Tensor& x, const GoldenCase& c) {
    return avg_pool2d(x, c.pair("kernel"), c.pair("stride"), c.pair("padding"));
  });
}

BOOST_AUTO_TEST_CASE(adaptive_avg_pool_matches_torch) {
  check_golden("adaptive_avg_pool2d.txt", [](const Tensor& x, const GoldenCase& c) {
    return adaptive_avg_pool2d(x, c.pair("output_size"));
  });
}

BOOST_AUTO_TEST_CASE(max_pool_ties_go_to_the_first_maximum) {
  for (Dtype d : {float64, float32}) {
    // Every 2x2 window is a tie; torch sends each gradient to the window's top-left element.
    Tensor x = tensor({{{{1.0, 1.0, 2.0, 2.0},
                         {1.0, 1.0, 2.0, 2.0},
                         {3.0, 0.0, 0.0, 0.0},
                         {3.0, 3.0, 0.0, 0.0}}}},
                      d)
                   .requires_grad_();
    Tensor y = max_pool2d(x, 2);
    expect_values(y, {1, 1, 2, 2}, {1, 2, 3, 0});
    y.sum().backward();
    expect_values(x.grad(), {1, 1, 4, 4}, {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0});
    // A tie between the second row's first element and a later one: row-major order wins.
    Tensor x2 = tensor({{{{0.0, 1.0}, {5.0, 5.0}}}}, d).requires_grad_();
    max_pool2d(x2, 2).sum().backward();
    expect_values(x2.grad(), {1, 1, 2, 2}, {0, 0, 1, 0});
    // Overlapping, padded windows over a constant image: each window's first in-bounds
    // element (top-left of the clipped window) collects the gradients.
    Tensor c = full({1, 1, 3, 3}, 0.5, d).requires_grad_();
    Tensor yc = max_pool2d(c, 3, 1, 1);
    expect_values(yc, {1, 1, 3, 3}, std::vector<double>(9, 0.5));
    yc.sum().backward();
    expect_values(c.grad(), {1, 1, 3, 3}, {4, 2, 0, 2, 1, 0, 0, 0, 0});
  }
}

BOOST_AUTO_TEST_CASE(max_pool_nan_and_infinity) {
  // NaN wins over numbers, and the last NaN of a window wins; an all -inf window picks its first
  // element (torch's `val > max || isnan(val)` scan from -inf).
  for (Dtype d : {float64, float32}) {
    Tensor x = tensor({{{{kNaN, 1.0, kNaN, 2.0},
                         {5.0, kNaN, 2.0, 2.0},
                         {-kInf, -kInf, 0.0, 0.0},
                         {-kInf, -kInf, 0.0, 0.0}}}},
                      d)
                   .requires_grad_();
    Tensor y = max_pool2d(x, 2);
    expect_values(y, {1, 1, 2, 2}, {kNaN, kNaN, -kInf, 0});
    y.backward(tensor({{{{1.0, 2.0}, {3.0, 4.0}}}}, d));
    expect_values(x.grad(), {1, 1, 4, 4}, {0, 0, 2, 0, 0, 1, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0});
    // The same through the general path (3x3 window, padding 1, stride 2).
    Tensor x3 =
        tensor({{{{1.0, kNaN, 3.0}, {kNaN, 2.0, 2.0}, {-kInf, 0.0, 9.0}}}}, d).requires_grad_();
    Tensor y3 = max_pool2d(x3, 3, 2, 1);
    expect_values(y3, {1, 1, 2, 2}, {kNaN, kNaN, kNaN, 9});
    y3.backward(tensor({{{{1.0, 2.0}, {3.0, 4.0}}}}, d));
    // Windows: (0,0) rows 0-1 cols 0-1 -> last NaN at 3; (0,1) rows 0-1 cols 1-2 -> NaN at 1;
    // (1,0) rows 1-2 cols 0-1 -> NaN at 3; (1,1) rows 1-2 cols 1-2 -> 9 at 8.
    expect_values(x3.grad(), {1, 1, 3, 3}, {0, 2, 0, 1 + 3, 0, 0, 0, 0, 4});
  }
}

BOOST_AUTO_TEST_CASE(max_pool_2x2_rows_of_any_length) {
  // The 2x2 stride-2 pool of float32 has a vectorised path (8 outputs per step, a masked
  // tail); float64 takes the scalar one. Both must pick the same elements, ties included
  // (integer values), for rows of 1 to 19 outputs, odd widths and heights included (whose last
  // column or row no window covers).
  for (std::int64_t w = 2; w <= 39; ++w) {
    BOOST_TEST_CONTEXT("width " << w) {
      manual_seed(static_cast<std::uint64_t>(w));
      Tensor x = uniform({2, 3, 5 + w % 2, w}, -3, 3, float64);
      {
        double* p = x.data_ptr<double>();
        for (std::int64_t i = 0; i < x.numel(); ++i) p[i] = std::round(p[i]);
      }
      Tensor a = x.to(float32).requires_grad_();
      Tensor b = x.detach().requires_grad_();
      Tensor ya = max_pool2d(a, 2), yb = max_pool2d(b, 2);
      expect_values(ya, yb.shape(), values_of(yb), 0);
      Tensor seed = uniform(yb.shape(), -1, 1, float64);
      ya.backward(seed.to(float32));
      yb.backward(seed);
      expect_values(a.grad(), b.grad().shape(), values_of(b.grad()), 1e-7);
    }
  }
}

BOOST_AUTO_TEST_CASE(default_stride_is_the_kernel) {
  Tensor x = leaf({2, 3, 7, 6}, -1, 1, 4);
  expect_values(max_pool2d(x, 3), {2, 3, 2, 2}, values_of(max_pool2d(x, 3, 3, 0)), 0);
  expect_values(max_pool2d(x, {3, 2}), {2, 3, 2, 3}, values_of(max_pool2d(x, {3, 2}, {3, 2})), 0);
  expect_values(avg_pool2d(x, 2), {2, 3, 3, 3}, values_of(avg_pool2d(x, 2, 2, 0)), 0);
  // count_include_pad: a corner window of a padded 2x2 average counts the padding.
  expect_values(avg_pool2d(ones({1, 1, 3, 3}, float64), 2, 2, 1), {1, 1, 2, 2},
                {0.25, 0.5, 0.5, 1});
  // Adaptive pooling to the input size is the identity; to 1x1 it is the mean.
  expect_values(adaptive_avg_pool2d(x, {7, 6}), x.shape(), values_of(x), 0);
  expect_values(adaptive_avg_pool2d(x, 1).reshape({6}), {6}, values_of(mean(x.reshape({6, 42}), 1)),
                1e-15);
}

BOOST_AUTO_TEST_CASE(gradcheck_pools) {
  struct Combo {
    Shape x;
    Size2 kernel, stride, padding;
  };
  const std::vector<Combo> combos = {
      {{2, 2, 4, 4}, 2, 2, 0},
      {{1, 2, 5, 5}, 2, 2, 0},
      {{1, 2, 5, 6}, 3, 2, 1},
      {{1, 1, 5, 5}, 3, 1, 1},
      {{1, 2, 6, 5}, {2, 3}, {1, 2}, {1, 1}},
      {{1, 1, 4, 3}, {4, 3}, 1, 0},
  };
  std::uint64_t seed = 1;
  for (const auto& c : combos) {
    BOOST_TEST_CONTEXT("input " << format_shape(c.x) << " kernel " << c.kernel.h << "x"
                                << c.kernel.w) {
      // Distinct random values: no ties, so max pooling is differentiable at the point.
      Tensor x = leaf(c.x, -1, 1, seed++);
      expect_gradcheck(
          [&](const std::vector<Tensor>& in) {
            return max_pool2d(in[0], c.kernel, c.stride, c.padding);
          },
          {x});
      expect_gradcheck(
          [&](const std::vector<Tensor>& in) {
            return avg_pool2d(in[0], c.kernel, c.stride, c.padding);
          },
          {x});
    }
  }
  const std::vector<std::pair<Shape, Size2>> adaptive = {
      {{1, 2, 7, 5}, {3, 2}}, {{2, 1, 4, 4}, 1}, {{1, 1, 3, 3}, 4}, {{1, 2, 6, 4}, {4, 3}}};
  for (const auto& [shape, out] : adaptive) {
    expect_gradcheck(
        [out = out](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], out); },
        {leaf(shape, -1, 1, seed++)});
  }
}

BOOST_AUTO_TEST_CASE(backward_ops_have_every_derivative) {
  // The pools' backward ops reached through create_graph: gradcheck is the pool's second
  // derivative, gradgradcheck its third, forward mode the backward ops' jvp rules. Max pool's
  // gradient is linear in the output gradient and piecewise constant in x (distinct values:
  // the argmax does not move under the finite differences).
  Tensor x = leaf({2, 2, 5, 6}, -1, 1, 30);
  const auto check = [&](const std::string& what, std::function<Tensor(const Tensor&)> pool) {
    BOOST_TEST_CONTEXT(what) {
      Tensor gy = leaf(pool(x.detach()).shape(), -1, 1, 31);
      expect_gradcheck(pool_grad_fn(std::move(pool)), {x, gy});
    }
  };
  check("max 2x2", [](const Tensor& t) { return max_pool2d(t, 2); });
  check("max 3x3 stride 1 pad 1", [](const Tensor& t) { return max_pool2d(t, 3, 1, 1); });
  check("avg 3x2 stride 2 pad 1", [](const Tensor& t) { return avg_pool2d(t, {3, 2}, 2, 1); });
  check("adaptive 3x4", [](const Tensor& t) { return adaptive_avg_pool2d(t, {3, 4}); });
}

BOOST_AUTO_TEST_CASE(second_derivatives_by_create_graph_match_closed_forms) {
  // L = Σ y² with y = max_pool2d(x, 3, 1, 1): ∂L/∂x_i = 2 Σ_{windows w choosing i} y_w, and y_w
  // = x_i there, so the Hessian is diagonal with 2·(number of windows choosing i).
  Tensor x = leaf({1, 2, 4, 5}, -1, 1, 50);
  const auto xv = values_of(x);
  std::vector<double> count(xv.size(), 0.0);
  for (std::int64_t i : window_argmax(xv, x.shape(), 3, 1, 1))
    count[static_cast<std::size_t>(i)] += 1;
  Tensor y = max_pool2d(x, 3, 1, 1);
  Tensor g = grad({(y * y).sum()}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  auto rows = jacobian_rows(g, x);
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < rows[i].size(); ++j)
      BOOST_TEST(rows[i][j] == (i == j ? 2 * count[i] : 0.0));
  // avg_pool2d(x, 2) on a 4x4 plane (windows tile it): y_w = Σ_{i∈w} x_i / 4, so ∂²L/∂x_i∂x_j
  // = 2/16 when i and j share a window, else 0.
  Tensor xa = leaf({1, 1, 4, 4}, -1, 1, 51);
  Tensor ya = avg_pool2d(xa, 2);
  Tensor ga = grad({(ya * ya).sum()}, {xa}, {}, std::nullopt, true)[0];
  rows = jacobian_rows(ga, xa);
  const auto window = [](std::size_t i) { return (i / 4) / 2 * 2 + (i % 4) / 2; };
  for (std::size_t i = 0; i < 16; ++i)
    for (std::size_t j = 0; j < 16; ++j)
      BOOST_TEST(rows[i][j] == (window(i) == window(j) ? 0.125 : 0.0),
                 boost::test_tools::tolerance(1e-15));
  // adaptive_avg_pool2d to 1x1 is the plane's mean m: ∂²(m²)/∂x_i∂x_j = 2/n².
  Tensor xm = leaf({1, 1, 3, 2}, -1, 1, 52);
  Tensor ym = adaptive_avg_pool2d(xm, 1);
  Tensor gm = grad({(ym * ym).sum()}, {xm}, {}, std::nullopt, true)[0];
  for (const auto& row : jacobian_rows(gm, xm))
    for (double h : row) BOOST_TEST(h == 2.0 / 36, boost::test_tools::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(second_derivative_of_a_conv_pool_block) {
  // L(w) = Σ pool(conv2d(x, w, b, padding 1))². conv2d is linear in w and, away from ties,
  // max pooling selects fixed elements: L is quadratic in w along any direction v, with
  //   vᵀ·∇²L·v = 2 Σ_outputs pool(conv2d(x, v))²   (max pool: at the argmax of the forward).
  // The double backward (create_graph) must give it, for max and average pooling.
  Tensor x = leaf({2, 2, 6, 6}, -1, 1, 60);
  Tensor w = leaf({3, 2, 3, 3}, -1, 1, 61);
  Tensor b = leaf({3}, -1, 1, 62);
  Tensor v = leaf({3, 2, 3, 3}, -1, 1, 63).detach();
  const auto z = values_of(conv2d(x, w, b, 1, 1));  // the forward's pre-pool values
  const auto cv = values_of(conv2d(x, v, Tensor(), 1, 1));
  const Shape zs = {2, 3, 6, 6};
  double max_quad = 0, avg_quad = 0;
  for (std::int64_t i : window_argmax(z, zs, 2, 2, 0))
    max_quad += 2 * cv[static_cast<std::size_t>(i)] * cv[static_cast<std::size_t>(i)];
  for (std::int64_t plane = 0; plane < 6; ++plane)
    for (std::int64_t oh = 0; oh < 3; ++oh)
      for (std::int64_t ow = 0; ow < 3; ++ow) {
        double s = 0;
        for (std::int64_t i = 0; i < 2; ++i)
          for (std::int64_t j = 0; j < 2; ++j)
            s += cv[static_cast<std::size_t>(plane * 36 + (2 * oh + i) * 6 + 2 * ow + j)];
        avg_quad += 2 * (s / 4) * (s / 4);
      }
  const auto quad = [&](const std::function<Tensor(const Tensor&)>& pool) {
    Tensor h = pool(conv2d(x, w, b, 1, 1));
    Tensor gw = grad({(h * h).sum()}, {w}, {}, std::nullopt, /*create_graph=*/true)[0];
    Tensor hv = grad({gw}, {w}, {v})[0];
    return (hv * v).sum().item<double>();
  };
  BOOST_TEST(quad([](const Tensor& t) { return max_pool2d(t, 2); }) == max_quad,
             boost::test_tools::tolerance(1e-12));
  BOOST_TEST(quad([](const Tensor& t) { return avg_pool2d(t, 2); }) == avg_quad,
             boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(max_pool_indices_are_freed_with_the_graph) {
  // The argmax indices are a saved tensor of the node: backward frees them, and a second
  // backward through the freed graph says so.
  Tensor x = leaf({1, 1, 4, 4}, -1, 1, 70);
  Tensor y = max_pool2d(x, 2).sum();
  y.backward();
  expect_error([&] { y.backward(); }, {"max_pool2d", "second time"});
}

BOOST_AUTO_TEST_CASE(threads_split_the_planes_with_the_same_results) {
  const int saved = get_num_threads();
  std::vector<std::vector<double>> results[2];
  for (int threads : {1, 2}) {
    set_num_batch_threads(threads);
    manual_seed(9);
    Tensor x = uniform({8, 16, 28, 28}, -1, 1, float32).requires_grad_();
    Tensor y = max_pool2d(x, 2).sum() + avg_pool2d(x, 3, 2, 1).sum() * 2.0 +
               adaptive_avg_pool2d(x, 5).sum() * 3.0;
    y.backward();
    results[threads - 1] = {values_of(max_pool2d(x, 2)), values_of(x.grad())};
  }
  set_num_batch_threads(0);
  BOOST_TEST(get_num_threads() == saved);
  BOOST_TEST(results[0][0] == results[1][0]);  // planes are independent: bitwise equal
  BOOST_TEST(results[0][1] == results[1][1]);
}

BOOST_AUTO_TEST_CASE(bad_input_throws) {
  Tensor x = zeros({1, 2, 5, 5});
  for (const char* op : {"max_pool2d", "avg_pool2d"}) {
    const auto f = [op](const Tensor& in, Size2 k, Size2 s, Size2 p) {
      return std::string(op) == "max_pool2d" ? max_pool2d(in, k, s, p) : avg_pool2d(in, k, s, p);
    };
    expect_error([&] { f(zeros({2, 5, 5}), 2, 2, 0); }, {op, "4-D input", "[2,5,5]"});
    expect_error([&] { f(x, 0, 1, 0); }, {op, "kernel size must be at least 1", "[1,2,5,5]"});
    expect_error([&] { f(x, 2, {1, 0}, 0); }, {op, "stride must be at least 1", "1x0"});
    expect_error([&] { f(x, 2, 2, -1); }, {op, "padding must be non-negative", "[1,2,5,5]"});
    expect_error([&] { f(x, 3, 1, 2); }, {op, "padding 2x2 must be at most half", "3x3"});
    expect_error(
        [&] {
          f(x, {6, 2}, 1, 0);
        },
        {op, "kernel 6x2 is larger than the padded input 5x5", "[1,2,5,5]"});
    expect_error([&] { f(zeros({1, 2, 5, 5}, int64), 2, 2, 0); }, {op, "int64"});
  }
  expect_error(
      [&] {
        adaptive_avg_pool2d(zeros({5, 5}), 2);
      },
      {"adaptive_avg_pool2d", "4-D input", "[5,5]"});
  expect_error(
      [&] {
        adaptive_avg_pool2d(zeros({1, 1, 0, 5}), 2);
      },
      {"adaptive_avg_pool2d", "non-empty", "[1,1,0,5]"});
  expect_error(
      [&] {
        adaptive_avg_pool2d(x, {2, -1});
      },
      {"adaptive_avg_pool2d", "output size", "2x-1", "[1,2,5,5]"});
}

BOOST_AUTO_TEST_SUITE_END()
