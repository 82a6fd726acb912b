// conv2d: values and gradients against torch (tests/data/conv_golden/conv2d.txt, written by
// tools/make_conv_golden.py) in float64 (1e-10) and float32 (relative 1e-4), every derivative
// (gradcheck, gradgradcheck, forward mode) in float64 across stride/padding/dilation/groups
// combinations, the backward ops' own derivatives (third order), second derivatives by
// create_graph against closed forms, hand-computed values, the multi-threaded path against
// the single-threaded one, and the errors of bad input.
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "conv_golden.hpp"
#include "test_util.hpp"
#include "xgrad/ops/conv.hpp"

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

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// conv2d with fixed hyper-parameters, over (input, weight[, bias]).
Fn conv_fn(Size2 stride, Size2 padding, Size2 dilation, std::int64_t groups) {
  return [=](const std::vector<Tensor>& in) {
    return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), stride, padding, dilation,
                  groups);
  };
}

// The gradient of conv2d with respect to input `wrt` (0: input, 1: weight) for the output
// gradient in[2], as a function of (input, weight, grad_output), recorded (create_graph): its
// derivatives are conv2d's second and third ones, its jvp runs the backward ops' jvp rules.
Fn conv_grad_fn(std::size_t wrt, Size2 stride, Size2 padding, Size2 dilation, std::int64_t groups) {
  return [=](const std::vector<Tensor>& in) {
    enable_grad on;  // gradcheck's finite differences call f under no_grad
    Tensor x = in[0], w = in[1];
    // Under forward mode the inputs are duals that need no gradient: make them leaves to
    // differentiate with respect to (the tangent stays on them).
    for (Tensor* t : {&x, &w})
      if (!t->requires_grad()) t->requires_grad_();
    Tensor y = conv2d(x, w, Tensor(), stride, padding, dilation, groups);
    return grad({y}, {wrt == 0 ? x : w}, {in[2]}, std::nullopt, /*create_graph=*/true)[0];
  };
}

// Restores the thread counts on scope exit.
struct ThreadsGuard {
  int saved = get_num_threads();
  ~ThreadsGuard() {
    set_num_threads(saved);
    set_num_batch_threads(0);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(conv)

BOOST_AUTO_TEST_CASE(matches_torch_float64_and_float32) {
  const auto cases = read_golden("conv2d.txt");
  BOOST_TEST(cases.size() >= 10u);
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("case " << c.name) {
      const bool has_bias = c.params.at("bias").at(0) == 1;
      for (Dtype d : {float64, float32}) {
        BOOST_TEST_CONTEXT("dtype " << dtype_name(d)) {
          Tensor x = c.tensors.at("input").to(d).detach().requires_grad_();
          Tensor w = c.tensors.at("weight").to(d).detach().requires_grad_();
          Tensor b = has_bias ? c.tensors.at("bias").to(d).detach().requires_grad_() : Tensor();
          Tensor y = conv2d(x, w, b, c.pair("stride"), c.pair("padding"), c.pair("dilation"),
                            c.params.at("groups").at(0));
          BOOST_TEST((y.dtype() == d));
          expect_golden(y, c.tensors.at("output"), golden_tol(d));
          y.backward(c.tensors.at("grad_output").to(d));
          expect_golden(x.grad(), c.tensors.at("grad_input"), golden_tol(d));
          expect_golden(w.grad(), c.tensors.at("grad_weight"), golden_tol(d));
          if (has_bias) expect_golden(b.grad(), c.tensors.at("grad_bias"), golden_tol(d));
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(hand_computed_values) {
  for (Dtype d : {float64, float32}) {
    // 0..8 as a 3x3 image, a 2x2 kernel of ones: each output sums a 2x2 window.
    Tensor x = arange(9.0, d).reshape({1, 1, 3, 3});
    Tensor w = ones({1, 1, 2, 2}, d);
    expect_values(conv2d(x, w), {1, 1, 2, 2}, {8, 12, 20, 24});
    // Bias, and two output channels (the second kernel picks the top-left element).
    Tensor w2 = tensor({{{{1.0, 1.0}, {1.0, 1.0}}}, {{{1.0, 0.0}, {0.0, 0.0}}}}, d);
    expect_values(conv2d(x, w2, tensor({0.5, -1.0}, d)), {1, 2, 2, 2},
                  {8.5, 12.5, 20.5, 24.5, -1, 0, 2, 3});
    // Zero padding 1 with the same kernel: the corners see one element.
    expect_values(conv2d(x, w, Tensor(), 1, 1), {1, 1, 4, 4},
                  {0, 1, 3, 2, 3, 8, 12, 7, 9, 20, 24, 13, 6, 13, 15, 8});
    // Stride 2 and dilation 2 on a 5x5 image 0..24: the kernel's taps are 2 apart.
    Tensor x5 = arange(25.0, d).reshape({1, 1, 5, 5});
    expect_values(conv2d(x5, w, Tensor(), 2, 0, 2), {1, 1, 2, 2},
                  {0 + 2 + 10 + 12, 2 + 4 + 12 + 14, 10 + 12 + 20 + 22, 12 + 14 + 22 + 24});
    // Groups: each half of the channels has its own kernel.
    Tensor xg = concat({x, x * 2.0}, 1);   // [1,2,3,3]
    Tensor wg = concat({w, w * -1.0}, 0);  // [2,1,2,2]
    expect_values(conv2d(xg, wg, Tensor(), 1, 0, 1, 2), {1, 2, 2, 2},
                  {8, 12, 20, 24, -16, -24, -40, -48});
  }
  // By value: d sum(conv) / d weight sums the windows; / d input counts the covering windows.
  Tensor x = arange(9.0, float64).reshape({1, 1, 3, 3}).requires_grad_();
  Tensor w = ones({1, 1, 2, 2}, float64).requires_grad_();
  Tensor b = zeros({1}, float64).requires_grad_();
  conv2d(x, w, b).sum().backward();
  expect_values(w.grad(), {1, 1, 2, 2},
                {0 + 1 + 3 + 4, 1 + 2 + 4 + 5, 3 + 4 + 6 + 7, 4 + 5 + 7 + 8});
  expect_values(x.grad(), {1, 1, 3, 3}, {1, 2, 1, 2, 4, 2, 1, 2, 1});
  expect_values(b.grad(), {1}, {4});
}

BOOST_AUTO_TEST_CASE(gradcheck_stride_padding_dilation_groups) {
  struct Combo {
    Shape x, w;
    Size2 stride, padding, dilation;
    std::int64_t groups;
    bool bias;
  };
  const std::vector<Combo> combos = {
      {{1, 2, 5, 5}, {3, 2, 3, 3}, 1, 0, 1, 1, true},
      {{2, 2, 4, 4}, {2, 2, 3, 3}, 1, 1, 1, 1, true},   // "same" padding, batch of 2
      {{1, 2, 6, 5}, {2, 2, 3, 3}, 2, 1, 1, 1, true},   // stride 2
      {{1, 1, 7, 7}, {2, 1, 3, 3}, 1, 2, 2, 1, false},  // dilation 2, same width
      {{1, 2, 7, 6}, {2, 2, 2, 3}, {2, 1}, {1, 0}, {1, 2}, 1, true},
      {{1, 4, 4, 4}, {4, 2, 3, 3}, 1, 1, 1, 2, true},   // groups 2
      {{1, 3, 5, 5}, {3, 1, 3, 3}, 2, 1, 1, 3, true},   // depthwise, stride 2
      {{1, 2, 5, 4}, {4, 1, 2, 2}, 1, 0, 2, 2, false},  // groups 2, 2 outputs per group
      {{2, 3, 3, 3}, {2, 3, 1, 1}, 1, 0, 1, 1, true},   // pointwise 1x1
      {{1, 2, 4, 5}, {2, 2, 1, 1}, 2, 1, 1, 1, true},   // 1x1 with stride and padding
      {{1, 1, 3, 4}, {2, 1, 5, 6}, 1, 1, 1, 1, true},   // kernel = padded input
      {{1, 1, 8, 7}, {1, 1, 2, 2}, 3, 0, 1, 1, true},   // stride > kernel
  };
  std::uint64_t seed = 1;
  for (const auto& c : combos) {
    BOOST_TEST_CONTEXT("input " << format_shape(c.x) << " weight " << format_shape(c.w)
                                << " groups " << c.groups) {
      const Fn f = conv_fn(c.stride, c.padding, c.dilation, c.groups);
      std::vector<Tensor> in = {leaf(c.x, -1, 1, seed), leaf(c.w, -1, 1, seed + 1)};
      if (c.bias) in.push_back(leaf({c.w[0]}, -1, 1, seed + 2));
      seed += 3;
      expect_gradcheck(f, in);
    }
  }
}

BOOST_AUTO_TEST_CASE(gradcheck_subsets_of_inputs) {
  const Fn f = conv_fn(2, 1, 1, 1);
  Tensor x = leaf({2, 2, 5, 4}, -1, 1, 11);
  Tensor w = leaf({3, 2, 3, 3}, -1, 1, 12);
  Tensor b = leaf({3}, -1, 1, 13);
  expect_gradcheck(f, {x, w.detach(), b.detach()});
  expect_gradcheck(f, {x.detach(), w, b.detach()});
  expect_gradcheck(f, {x.detach(), w.detach(), b});
  expect_gradcheck(f, {x, w.detach()});
  // Only the needed gradients are computed: x.grad stays undefined when x needs none.
  Tensor xd = x.detach();
  Tensor wl = w.detach().requires_grad_();
  conv2d(xd, wl, Tensor(), 1, 1).sum().backward();
  BOOST_TEST(wl.grad().defined());
  BOOST_TEST(!xd.grad().defined());
}

BOOST_AUTO_TEST_CASE(backward_ops_have_every_derivative) {
  // conv2d_backward_input and conv2d_backward_weight, reached through create_graph: gradcheck
  // is conv2d's second derivative, gradgradcheck its third, forward mode their jvp rules.
  struct Combo {
    Shape x, w;
    Size2 stride, padding, dilation;
    std::int64_t groups;
  };
  const std::vector<Combo> combos = {
      {{2, 2, 4, 4}, {3, 2, 3, 3}, 1, 1, 1, 1},
      {{1, 4, 6, 5}, {4, 2, 2, 3}, {2, 1}, {1, 0}, {1, 2}, 2},
      {{1, 2, 3, 3}, {2, 2, 1, 1}, 1, 0, 1, 1},  // pointwise: no im2col
  };
  std::uint64_t seed = 40;
  for (const auto& c : combos) {
    BOOST_TEST_CONTEXT("input " << format_shape(c.x) << " weight " << format_shape(c.w)) {
      Tensor x = leaf(c.x, -1, 1, seed), w = leaf(c.w, -1, 1, seed + 1);
      Tensor y =
          conv2d(x.detach(), w.detach(), Tensor(), c.stride, c.padding, c.dilation, c.groups);
      Tensor gy = leaf(y.shape(), -1, 1, seed + 2);
      seed += 3;
      for (std::size_t wrt : {0u, 1u}) {
        BOOST_TEST_CONTEXT("gradient " << wrt) {
          expect_gradcheck(conv_grad_fn(wrt, c.stride, c.padding, c.dilation, c.groups),
                           {x, w, gy});
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(second_derivatives_by_create_graph_match_closed_forms) {
  // L = Σ y², y = conv2d(x, w, padding 1) with one channel. y[p,q] = Σ_ij w[i,j]·X(p+i−1,
  // q+j−1), X = x inside, 0 in the padding, so ∂L/∂w[i,j] = 2 Σ_pq y[p,q]·X(p+i−1, q+j−1) and
  //   ∂²L/∂w[i,j]∂w[k,l] = 2 Σ_pq X(p+k−1, q+l−1)·X(p+i−1, q+j−1)
  //   ∂²L/∂w[i,j]∂x[a,b] = 2 Σ_pq w[a−p+1, b−q+1]·X(p+i−1, q+j−1) + 2·y[a−i+1, b−j+1]
  // (terms whose w or y index falls outside dropped).
  const std::int64_t H = 3, W = 4, k = 2, OH = H + 2 - k + 1, OW = W + 2 - k + 1;
  const std::vector<double> xv = {0.5,   -1.0, 2.0,  0.25, 1.5,  0.0,
                                  -0.75, 1.0,  -2.0, 0.5,  1.25, -0.5};
  const std::vector<double> wv = {0.3, -0.7, 1.1, 0.4};
  Tensor x = xgrad::testing::make(xv, {1, 1, H, W}).requires_grad_();
  Tensor w = xgrad::testing::make(wv, {1, 1, k, k}).requires_grad_();
  const auto X = [&](std::int64_t r, std::int64_t c) {
    return r < 0 || r >= H || c < 0 || c >= W ? 0.0 : xv[static_cast<std::size_t>(r * W + c)];
  };
  std::vector<double> yv(static_cast<std::size_t>(OH * OW), 0.0);
  for (std::int64_t p = 0; p < OH; ++p)
    for (std::int64_t q = 0; q < OW; ++q)
      for (std::int64_t i = 0; i < k; ++i)
        for (std::int64_t j = 0; j < k; ++j)
          yv[static_cast<std::size_t>(p * OW + q)] +=
              wv[static_cast<std::size_t>(i * k + j)] * X(p + i - 1, q + j - 1);
  Tensor y = conv2d(x, w, Tensor(), 1, 1);
  expect_values(y, {1, 1, OH, OW}, yv);
  Tensor gw = grad({(y * y).sum()}, {w}, {}, std::nullopt, /*create_graph=*/true)[0];
  BOOST_TEST(gw.requires_grad());
  for (std::int64_t i = 0; i < k; ++i) {
    for (std::int64_t j = 0; j < k; ++j) {
      BOOST_TEST_CONTEXT("row d/dw[" << i << "," << j << "]") {
        std::vector<double> ww(static_cast<std::size_t>(k * k), 0.0);
        std::vector<double> wx(static_cast<std::size_t>(H * W), 0.0);
        for (std::int64_t p = 0; p < OH; ++p) {
          for (std::int64_t q = 0; q < OW; ++q) {
            const double xij = X(p + i - 1, q + j - 1);
            for (std::int64_t kk = 0; kk < k; ++kk)
              for (std::int64_t l = 0; l < k; ++l)
                ww[static_cast<std::size_t>(kk * k + l)] += 2 * X(p + kk - 1, q + l - 1) * xij;
            // x[a, b] with a = p + kk − 1, b = q + l − 1 feeds y[p, q] through w[kk, l].
            for (std::int64_t kk = 0; kk < k; ++kk) {
              for (std::int64_t l = 0; l < k; ++l) {
                const std::int64_t a = p + kk - 1, b = q + l - 1;
                if (a < 0 || a >= H || b < 0 || b >= W) continue;
                wx[static_cast<std::size_t>(a * W + b)] +=
                    2 * wv[static_cast<std::size_t>(kk * k + l)] * xij;
              }
            }
          }
        }
        for (std::int64_t a = 0; a < H; ++a) {
          for (std::int64_t b = 0; b < W; ++b) {
            const std::int64_t p = a - i + 1, q = b - j + 1;
            if (p >= 0 && p < OH && q >= 0 && q < OW)
              wx[static_cast<std::size_t>(a * W + b)] +=
                  2 * yv[static_cast<std::size_t>(p * OW + q)];
          }
        }
        Tensor e = zeros({1, 1, k, k}, float64);
        e.data_ptr<double>()[i * k + j] = 1.0;
        auto rows = grad({gw}, {w, x}, {e}, /*retain_graph=*/true);
        expect_values(rows[0], {1, 1, k, k}, ww, 1e-12);
        expect_values(rows[1], {1, 1, H, W}, wx, 1e-12);
      }
    }
  }
  // Forward over reverse gives the same Hessian-vector product along w: H_ww·e₀₀.
  {
    autograd::forward_ad::dual_level level;
    Tensor w0 = w.detach().requires_grad_();
    Tensor e = zeros({1, 1, k, k}, float64);
    e.data_ptr<double>()[0] = 1.0;
    Tensor wd = autograd::forward_ad::make_dual(w0, e);
    Tensor yd = conv2d(x.detach(), wd, Tensor(), 1, 1);
    Tensor g = grad({(yd * yd).sum()}, {w0}, {}, std::nullopt, /*create_graph=*/true)[0];
    Tensor hv = grad({gw}, {w}, {e}, /*retain_graph=*/true)[0];
    expect_values(autograd::forward_ad::unpack_dual(g).tangent, {1, 1, k, k}, values_of(hv), 1e-12);
  }
  // Without create_graph the backward records nothing (the fused first-order kernel).
  Tensor g1 = grad({(y * y).sum()}, {w})[0];
  BOOST_TEST(!g1.requires_grad());
  BOOST_TEST(!g1.grad_fn());
}

BOOST_AUTO_TEST_CASE(threads_split_the_batch_with_the_same_results) {
  ThreadsGuard guard;
  const Shape xs = {6, 8, 12, 12}, ws = {16, 4, 3, 3};
  // (BLAS threads, batch threads): the batch pool follows the BLAS count unless set.
  const std::vector<std::pair<int, int>> configs = {{1, 0}, {2, 0}, {1, 2}, {1, 3}};
  std::vector<std::vector<std::vector<double>>> results;
  for (const auto& [blas, batch] : configs) {
    set_num_threads(blas);
    set_num_batch_threads(batch);
    BOOST_TEST(get_num_batch_threads() == (batch > 0 ? batch : blas));
    results.emplace_back();
    for (Dtype d : {float64, float32}) {
      manual_seed(5);
      Tensor x = uniform(xs, -1, 1, d).requires_grad_();
      Tensor w = uniform(ws, -1, 1, d).requires_grad_();
      Tensor b = uniform({16}, -1, 1, d).requires_grad_();
      Tensor y = conv2d(x, w, b, 1, 1, 1, 2);
      (y * y).sum().backward();
      for (const Tensor& t : {y, x.grad(), w.grad(), b.grad()})
        results.back().push_back(values_of(t));
    }
    // conv2d hands BLAS back its thread count.
    BOOST_TEST(get_num_threads() == blas);
  }
  set_num_batch_threads(0);
  // The batch is split into the same chunks whatever the thread count, and the weight and
  // bias gradients are added up in chunk order: the results are bitwise equal.
  for (std::size_t c = 1; c < results.size(); ++c)
    for (std::size_t i = 0; i < results[0].size(); ++i) BOOST_TEST(results[0][i] == results[c][i]);
  expect_error([] { set_num_batch_threads(-1); }, {"set_num_batch_threads", "-1"});
}

BOOST_AUTO_TEST_CASE(empty_batch_and_non_contiguous_input) {
  Tensor w = leaf({3, 2, 3, 3}, -1, 1, 2);
  Tensor y = conv2d(zeros({0, 2, 5, 5}, float64), w, Tensor(), 1, 1);
  BOOST_TEST(y.shape() == (Shape{0, 3, 5, 5}));
  // A transposed (non-contiguous) input gives the values of its contiguous copy.
  Tensor x = leaf({1, 2, 5, 4}, -1, 1, 3);
  Tensor xt = transpose(x, 2, 3);  // [1,2,4,5]
  BOOST_TEST(!xt.is_contiguous());
  expect_golden(conv2d(xt, w, Tensor(), 1, 1), conv2d(xt.contiguous(), w, Tensor(), 1, 1), 1e-15);
  expect_gradcheck(
      [&](const std::vector<Tensor>& in) {
        return conv2d(transpose(in[0], 2, 3), in[1], Tensor(), 1, 1);
      },
      {x, w});
}

BOOST_AUTO_TEST_CASE(bad_input_throws) {
  Tensor x = zeros({1, 3, 5, 5});
  Tensor w = zeros({4, 3, 3, 3});
  expect_error([&] { conv2d(zeros({3, 5, 5}), w); }, {"conv2d", "4-D input", "[3,5,5]"});
  expect_error([&] { conv2d(x, zeros({4, 3, 3})); }, {"conv2d", "4-D weight", "[4,3,3]"});
  expect_error(
      [&] {
        conv2d(x, zeros({4, 2, 3, 3}));
      },
      {"conv2d", "channel mismatch", "[1,3,5,5]", "[4,2,3,3]"});
  expect_error(
      [&] {
        conv2d(x, zeros({4, 1, 3, 3}), Tensor(), 1, 0, 1, 2);
      },
      {"conv2d", "groups 2 does not divide the 3 input channels", "[1,3,5,5]"});
  expect_error(
      [&] {
        conv2d(zeros({1, 4, 5, 5}), zeros({3, 2, 3, 3}), Tensor(), 1, 0, 1, 2);
      },
      {"conv2d", "groups 2 does not divide the 3 output channels", "[3,2,3,3]"});
  expect_error([&] { conv2d(x, w, Tensor(), 1, 0, 1, 0); }, {"conv2d", "groups", "at least 1"});
  expect_error(
      [&] {
        conv2d(zeros({1, 1, 2, 2}), zeros({1, 1, 3, 3}));
      },
      {"conv2d", "larger than the padded input 2x2", "[1,1,2,2]", "[1,1,3,3]"});
  expect_error(
      [&] {
        conv2d(zeros({1, 1, 4, 4}), zeros({1, 1, 3, 3}), Tensor(), 1, 0, 2);
      },
      {"conv2d", "dilated 5x5", "larger than the padded input 4x4"});
  expect_error(
      [&] {
        conv2d(x, w, Tensor(), 1, {0, -1});
      },
      {"conv2d", "padding must be non-negative", "0x-1", "[1,3,5,5]"});
  expect_error([&] { conv2d(x, w, Tensor(), {0, 1}); }, {"conv2d", "stride", "0x1"});
  expect_error([&] { conv2d(x, w, Tensor(), 1, 0, -1); }, {"conv2d", "dilation", "-1x-1"});
  expect_error([&] { conv2d(x, zeros({4, 3, 0, 3})); }, {"conv2d", "[4,3,0,3]"});
  expect_error([&] { conv2d(x, w, zeros({3})); }, {"conv2d", "bias", "[4]", "[3]"});
  expect_error(
      [&] {
        conv2d(x, zeros({4, 3, 3, 3}, float64));
      },
      {"conv2d", "float32 [1,3,5,5]", "float64 [4,3,3,3]"});
  expect_error(
      [&] {
        conv2d(zeros({1, 3, 5, 5}, int64), zeros({4, 3, 3, 3}, int64));
      },
      {"conv2d", "int64"});
}

BOOST_AUTO_TEST_SUITE_END()
