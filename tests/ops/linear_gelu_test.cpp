// linear_gelu: gelu(linear(x, w, b)) as one op. On the fused path (a trained input of at least
// 65,536 outputs) the same output and x, w, b gradients as the composition (float64 within
// 1e-12, float32 within 1e-5), with and without bias, whether the incoming gradient is the op's
// to overwrite or the caller's (left untouched); second derivatives (create_graph) as the
// composition's; the small path's gradcheck and gradgradcheck; vmap and jvp as the composition;
// the errors linear gives.
#include <vector>

#include "derivative_checks.hpp"
#include "transformer_golden.hpp"
#include "xgrad/func.hpp"
#include "xgrad/ops/activation.hpp"
#include "xgrad/ops/linalg.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::leaf;
using xgrad::testing::values_of;
namespace xf = xgrad::func;

namespace {

void expect_close(const Tensor& a, const Tensor& ref, double tol) {
  expect_values(a, ref.shape(), values_of(ref), tol);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(linear_gelu_op)

BOOST_AUTO_TEST_CASE(fused_path_equals_the_composition) {
  // [2, 150, 24] -> [2, 150, 256]: 76,800 outputs, several row blocks.
  for (Dtype d : {float64, float32}) {
    for (bool with_bias : {true, false}) {
      BOOST_TEST_CONTEXT(dtype_name(d) << (with_bias ? " bias" : " no bias")) {
        const double tol = d == float32 ? 1e-5 : 1e-12;
        Tensor x = leaf({2, 150, 24}, -2, 2, 1).detach().to(d).requires_grad_();
        Tensor w = leaf({256, 24}, -0.5, 0.5, 2).detach().to(d).requires_grad_();
        Tensor b = with_bias ? leaf({256}, -1, 1, 3).detach().to(d).requires_grad_() : Tensor();
        Tensor r = leaf({2, 150, 256}, -1, 1, 4).detach().to(d);
        std::vector<Tensor> in{x, w};
        if (with_bias) in.push_back(b);
        Tensor y = linear_gelu(x, w, b);
        BOOST_TEST(y.grad_fn()->name() == "linear_gelu");
        Tensor y_ref = gelu(linear(x, w, b));
        expect_close(y, y_ref, tol);
        // mul's backward hands the node a fresh gradient (overwritten in place) ...
        auto g = grad({sum(mul(y, r))}, in);
        auto g_ref = grad({sum(mul(y_ref, r))}, in);
        for (std::size_t i = 0; i < in.size(); ++i) expect_close(g[i], g_ref[i], tol);
        // ... the caller's own gradient is read, not written.
        Tensor y2 = linear_gelu(x, w, b);
        const std::vector<double> before = values_of(r);
        auto g2 = grad({y2}, in, {r});
        BOOST_TEST(values_of(r) == before);
        for (std::size_t i = 0; i < in.size(); ++i) expect_close(g2[i], g_ref[i], tol);
        // Second derivatives: the create_graph backward (ops, h recomputed).
        auto c = grad({sum(mul(linear_gelu(x, w, b), r))}, in, {}, std::nullopt, true);
        auto c_ref = grad({sum(mul(gelu(linear(x, w, b)), r))}, in, {}, std::nullopt, true);
        for (std::size_t i = 0; i < in.size(); ++i) expect_close(c[i], c_ref[i], tol);
        auto h = grad({sum(mul(c[0], c[0]))}, in);
        auto h_ref = grad({sum(mul(c_ref[0], c_ref[0]))}, in);
        for (std::size_t i = 0; i < in.size(); ++i) expect_close(h[i], h_ref[i], tol * 10);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(every_derivative_of_the_small_path) {
  Tensor x = leaf({3, 4}, -2, 2, 11), w = leaf({5, 4}, -1, 1, 12), b = leaf({5}, -1, 1, 13);
  expect_gradcheck([](const std::vector<Tensor>& t) { return linear_gelu(t[0], t[1], t[2]); },
                   {x, w, b});
}

BOOST_AUTO_TEST_CASE(vmap_and_jvp_as_the_composition) {
  manual_seed(31);
  Tensor x = uniform({3, 300, 8}, -2.0, 2.0, float64);  // per sample 300 x 256 outputs
  Tensor w = uniform({256, 8}, -1.0, 1.0, float64), b = uniform({256}, -1.0, 1.0, float64);
  Tensor mapped = xf::vmap([&](const Tensor& t) { return linear_gelu(t, w, b); })(x);
  expect_close(mapped, gelu(linear(x, w, b)), 1e-12);
  Tensor u = uniform({3, 300, 8}, -1.0, 1.0, float64);
  auto [y, t] = xf::jvp([&](const Tensor& s) { return linear_gelu(s, w, b); }, x, u);
  auto [y_ref, t_ref] = xf::jvp([&](const Tensor& s) { return gelu(linear(s, w, b)); }, x, u);
  expect_close(y, y_ref, 1e-12);
  expect_close(t, t_ref, 1e-12);
}

BOOST_AUTO_TEST_CASE(bad_input_names_the_shapes) {
  expect_error([] { linear_gelu(zeros({4, 3}), zeros({5, 2})); }, {"linear", "[4,3]", "[5,2]"});
  expect_error(
      [] {
        linear_gelu(zeros({4, 3}), zeros({5, 3}), zeros({4}));
      },
      {"linear", "bias [4]"});
}

BOOST_AUTO_TEST_SUITE_END()
