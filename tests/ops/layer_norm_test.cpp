// layer_norm: values and gradients against torch 1.13 (golden files) in both dtypes, every
// derivative (gradcheck, gradgradcheck, forward vs reverse) with and without weight and bias,
// a large common offset, and the errors' words.
#include <cmath>
#include <vector>

#include "derivative_checks.hpp"
#include "transformer_golden.hpp"
#include "xgrad/ops/layer_norm.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_golden;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::grads_of;
using xgrad::testing::kFloatDtypes;
using xgrad::testing::leaf;
using xgrad::testing::read_transformer_golden;
using xgrad::testing::transformer_tol;

BOOST_AUTO_TEST_SUITE(layer_norm_op)

BOOST_AUTO_TEST_CASE(matches_torch_values_and_gradients) {
  for (Dtype d : kFloatDtypes) {
    for (const auto& c : read_transformer_golden("layer_norm.txt")) {
      BOOST_TEST_CONTEXT(c.name << " " << dtype_name(d)) {
        const double tol = transformer_tol(d);
        Tensor x = c.at("input").to(d).requires_grad_();
        const bool affine = c.has("weight");
        Tensor w = affine ? c.at("weight").to(d).requires_grad_() : Tensor{};
        Tensor b = affine ? c.at("bias").to(d).requires_grad_() : Tensor{};
        Tensor y = layer_norm(x, c.shape_list("normalized_shape"), w, b, c.scalar("eps"));
        expect_golden(y, c.at("output"), tol);
        std::vector<Tensor> inputs{x};
        if (affine) inputs = {x, w, b};
        auto g = grads_of(y, c.at("grad_output").to(d), inputs);
        expect_golden(g[0], c.at("grad_input"), tol);
        if (affine) {
          expect_golden(g[1], c.at("grad_weight"), tol);
          expect_golden(g[2], c.at("grad_bias"), tol);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(every_derivative_checks) {
  Tensor x = leaf({2, 3, 4}, -1, 1, 1);
  Tensor w = leaf({3, 4}, 0.5, 1.5, 2);
  Tensor b = leaf({3, 4}, -1, 1, 3);
  expect_gradcheck(
      [](const std::vector<Tensor>& t) {
        return layer_norm(t[0], {3, 4}, t[1], t[2]);
      },
      {x, w, b});
  expect_gradcheck([](const std::vector<Tensor>& t) { return layer_norm(t[0], {4}); }, {x});
}

BOOST_AUTO_TEST_CASE(fused_backward_equals_the_backward_written_with_ops) {
  Tensor x = leaf({5, 6}, -2, 2, 4);
  Tensor w = leaf({6}, 0.5, 1.5, 5);
  Tensor b = leaf({6}, -1, 1, 6);
  Tensor g = leaf({5, 6}, -1, 1, 7).detach();
  auto fused = grad({sum(mul(layer_norm(x, {6}, w, b), g))}, {x, w, b});
  auto recorded = grad({sum(mul(layer_norm(x, {6}, w, b), g))}, {x, w, b}, {}, true, true);
  for (std::size_t i = 0; i < 3; ++i) expect_golden(fused[i], recorded[i].detach(), 1e-12);
}

BOOST_AUTO_TEST_CASE(large_offset_keeps_its_digits_in_float32) {
  // x = 1e4 + [0, 0.25, 0.5, 0.75]: exact float32 numbers; normalised they are
  // (k − 1.5)·0.25/√(0.078125 + eps). torch 1.13 gives [-1.3422, -0.4479, 0.4465, 1.3409].
  Tensor x = xgrad::testing::make({10000.0, 10000.25, 10000.5, 10000.75}, {4}, float32);
  Tensor y = layer_norm(x, {4}, {}, {}, 1e-5);
  std::vector<double> expect;
  for (int k = 0; k < 4; ++k) expect.push_back((k - 1.5) * 0.25 / std::sqrt(0.078125 + 1e-5));
  xgrad::testing::expect_values(y, {4}, expect, 1e-6);
}

BOOST_AUTO_TEST_CASE(float32_kernel_matches_float64_on_large_rows) {
  // The float32 kernels (sixteen partial sums, rows in chunks of 256, dw/db flushed every 16
  // rows) against the float64 loops: 600 rows cross chunks and flushes, M = 128 (the GPT's
  // width) and M = 45 (a tail after the sixteen lanes), with and without weight and bias.
  for (std::int64_t M : {128, 45}) {
    for (bool affine : {true, false}) {
      BOOST_TEST_CONTEXT("M " << M << " affine " << affine) {
        Tensor x = leaf({600, M}, -3, 5, 11);
        Tensor w = affine ? leaf({M}, 0.5, 1.5, 12) : Tensor{};
        Tensor b = affine ? leaf({M}, -1, 1, 13) : Tensor{};
        Tensor g = leaf({600, M}, -1, 1, 14).detach();
        std::vector<Tensor> in64{x}, in32{x.detach().to(float32).requires_grad_()};
        if (affine) {
          in64 = {x, w, b};
          in32.push_back(w.detach().to(float32).requires_grad_());
          in32.push_back(b.detach().to(float32).requires_grad_());
        }
        auto run = [&](const std::vector<Tensor>& in) {
          Tensor y = layer_norm(in[0], {M}, affine ? in[1] : Tensor{}, affine ? in[2] : Tensor{});
          auto gr = grad({sum(mul(y, g.to(y.dtype())))}, in);
          gr.insert(gr.begin(), y.detach());
          return gr;
        };
        auto r64 = run(in64), r32 = run(in32);
        // Within 1e-5 of float64, as torch's float32 goldens are held.
        for (std::size_t i = 0; i < r64.size(); ++i) expect_golden(r32[i], r64[i], 1e-5);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_input_names_op_and_shapes) {
  Tensor x = zeros({2, 3});
  expect_error([&] { layer_norm(x, {4}); },
               {"layer_norm", "normalized_shape [4]", "input of shape [2,3]"});
  expect_error([&] { layer_norm(x, {}); }, {"layer_norm", "normalized_shape []"});
  expect_error([&] { layer_norm(x, {3}, zeros({2})); }, {"layer_norm", "weight", "[3]", "[2]"});
  expect_error([&] { layer_norm(x, {3}, {}, zeros({3}, float64)); },
               {"layer_norm", "bias", "float64"});
  expect_error([&] { layer_norm(zeros({2, 3}, int64), {3}); }, {"layer_norm", "int64"});
}

BOOST_AUTO_TEST_SUITE_END()
