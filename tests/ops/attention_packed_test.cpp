// scaled_dot_product_attention_packed (multi-head self-attention's q, k, v in one projection):
// the same output and qkv gradient as slicing the projection into heads and calling
// scaled_dot_product_attention (float32 within 1e-5 on several tiles, float64 within 1e-12),
// causal, masked (attn_mask and key-padding shapes) and with dropout (same seed); every
// derivative (gradcheck, gradgradcheck through the op-written backward, forward vs reverse);
// the batching rule against a loop; and the errors.
#include <functional>
#include <optional>
#include <vector>

#include "derivative_checks.hpp"
#include "transformer_golden.hpp"
#include "xgrad/func.hpp"
#include "xgrad/ops/attention.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_gradcheck;
using xgrad::testing::expect_values;
using xgrad::testing::grads_of;
using xgrad::testing::leaf;
using xgrad::testing::values_of;
namespace xf = xgrad::func;

namespace {

// The reference: q, k, v sliced out of qkv [B, L, 3E], split into heads, the per-head fused
// attention, the heads put side by side again (each step an op).
Tensor sliced(const Tensor& qkv, std::int64_t H, const Tensor& mask, double p, bool causal) {
  const std::int64_t B = qkv.size(0), L = qkv.size(1), E = qkv.size(2) / 3;
  auto part = [&](std::int64_t i) {
    return permute(reshape(slice(qkv, 2, i * E, (i + 1) * E), {B, L, H, E / H}), {0, 2, 1, 3});
  };
  Tensor o = scaled_dot_product_attention(part(0), part(1), part(2), mask, p, causal);
  return reshape(permute(o, {0, 2, 1, 3}), {B, L, E});
}

// Output and qkv's gradient under a fixed seed (dropout).
std::vector<Tensor> run(const std::function<Tensor()>& f, const Tensor& qkv, const Tensor& gout) {
  manual_seed(77);
  Tensor y = f();
  auto g = grads_of(y, gout, {qkv});
  return {y.detach(), g[0]};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(attention_packed)

BOOST_AUTO_TEST_CASE(equals_the_sliced_heads) {
  // L = 150: several query blocks and key tiles, the last partial; 4 heads of 8.
  const std::int64_t B = 2, L = 150, H = 4, E = 32;
  manual_seed(3);
  Tensor keep = rand({B, 1, 1, L}) < 0.8;  // a key padding mask, broadcast over heads and rows
  Tensor fmask = leaf({1, 1, L, L}, -1, 1, 4).detach();
  struct Case {
    const char* name;
    Tensor mask;
    bool causal;
    double p;
  };
  const Case cases[] = {{"plain", {}, false, 0.0},
                        {"causal", {}, true, 0.0},
                        {"key_padding", keep, false, 0.0},
                        {"float_mask", fmask, false, 0.0},
                        {"causal_dropout", {}, true, 0.25}};
  for (Dtype d : {float32, float64}) {
    const double tol = d == float32 ? 1e-5 : 1e-12;
    Tensor qkv = leaf({B, L, 3 * E}, -2, 2, 1).detach().to(d).requires_grad_();
    Tensor gout = leaf({B, L, E}, -1, 1, 2).detach().to(d);
    for (const auto& c : cases) {
      BOOST_TEST_CONTEXT(c.name << " " << dtype_name(d)) {
        Tensor m = c.mask.defined() && c.mask.dtype() != boolean ? c.mask.to(d) : c.mask;
        auto packed =
            run([&] { return scaled_dot_product_attention_packed(qkv, H, m, c.p, c.causal); }, qkv,
                gout);
        auto ref = run([&] { return sliced(qkv, H, m, c.p, c.causal); }, qkv, gout);
        for (std::size_t i = 0; i < packed.size(); ++i)
          expect_values(packed[i], ref[i].shape(), values_of(ref[i]), tol);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(every_derivative) {
  // 2 heads of 3, L = 4; causal, a bool key mask, a float mask; and an explicit scale.
  Tensor qkv = leaf({2, 4, 18}, -1, 1, 11);
  expect_gradcheck(
      [](const std::vector<Tensor>& t) { return scaled_dot_product_attention_packed(t[0], 2); },
      {qkv});
  expect_gradcheck(
      [](const std::vector<Tensor>& t) {
        return scaled_dot_product_attention_packed(t[0], 2, {}, 0.0, true, 0.6);
      },
      {qkv});
  Tensor keep = xgrad::testing::make({1, 0, 1, 1, 1, 1, 0, 1}, {2, 1, 1, 4}).to(boolean);
  expect_gradcheck(
      [&](const std::vector<Tensor>& t) {
        return scaled_dot_product_attention_packed(t[0], 2, keep);
      },
      {qkv});
  // A float mask that requires grad takes the composition; its gradient flows.
  Tensor fmask = leaf({4, 4}, -1, 1, 12);
  expect_gradcheck(
      [](const std::vector<Tensor>& t) {
        return scaled_dot_product_attention_packed(t[0], 2, t[1]);
      },
      {qkv, fmask});
}

BOOST_AUTO_TEST_CASE(batching_rule_equals_the_loop) {
  manual_seed(21);
  Tensor qkv = uniform({3, 2, 5, 12}, -1.0, 1.0, float64);  // vmap over 3 of [2, 5, 12]
  auto f = [](const std::vector<Tensor>& t) {
    return scaled_dot_product_attention_packed(t[0], 2, {}, 0.0, true);
  };
  Tensor mapped = xf::vmap(f, {0})({qkv});
  std::vector<Tensor> out;
  for (std::int64_t b = 0; b < 3; ++b) out.push_back(f({select(qkv, 0, b)}));
  Tensor looped = stack(out, 0);
  expect_values(mapped, looped.shape(), values_of(looped), 1e-12);
}

BOOST_AUTO_TEST_CASE(bad_input_names_op_and_shapes) {
  expect_error(
      [] {
        scaled_dot_product_attention_packed(zeros({4, 12}), 2);
      },
      {"scaled_dot_product_attention_packed", "[4,12]"});
  expect_error(
      [] {
        scaled_dot_product_attention_packed(zeros({2, 4, 12}), 3);
      },
      {"scaled_dot_product_attention_packed", "[2,4,12]", "num_heads (3)"});
  expect_error(
      [] {
        scaled_dot_product_attention_packed(zeros({2, 4, 12}), 2, ones({3, 3}, boolean));
      },
      {"scaled_dot_product_attention_packed", "attn_mask of shape [3,3]"});
}

BOOST_AUTO_TEST_SUITE_END()
