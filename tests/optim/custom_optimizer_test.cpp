// A user-defined optimizer on the public Optimizer interface: the Adagrad of
// examples/adagrad.hpp (the code docs/optimizers.md walks through) against torch.optim.Adagrad,
// and training a small MLP with it.
//
// Reference: f(w) = ½‖Aw − b‖², A = [[2, 1], [0.5, 3]], b = [1, −2], w0 = [0.5, −0.25], float64,
// as in optimizer_test.cpp. kAdagrad was produced by torch 1.13.1 (Debian's python3-torch, CPU
// capability AVX2) with /usr/bin/python3, printing each value with "%.17g":
//
//   import torch
//   torch.set_default_dtype(torch.float64)
//   A = torch.tensor([[2.0, 1.0], [0.5, 3.0]]); b = torch.tensor([1.0, -2.0])
//   w = torch.tensor([0.5, -0.25], requires_grad=True)
//   opt = torch.optim.Adagrad([w], lr=0.1)  # eps 1e-10, lr_decay 0, initial_accumulator_value 0
//   for _ in range(3):
//       opt.zero_grad()
//       loss = 0.5 * ((A @ w - b) ** 2).sum()
//       loss.backward()
//       print("grad", ", ".join("%.17g" % v for v in w.grad.tolist()))
//       opt.step()
//       print("w", ", ".join("%.17g" % v for v in w.tolist()))
#include <cmath>
#include <cstdint>
#include <vector>

#include "../../examples/adagrad.hpp"
#include "test_util.hpp"
#include "xgrad/data/dataloader.hpp"
#include "xgrad/data/dataset.hpp"
#include "xgrad/nn/mlp.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;

namespace {

// torch.optim.Adagrad(lr=0.1): w after steps 1, 2, 3, and the gradients of those steps.
const std::vector<std::vector<double>> kAdagradW = {{0.40000000004000003, -0.34999999999764708},
                                                    {0.4902860519012005, -0.4063638329916705},
                                                    {0.54060194990515775, -0.45218453488663962}};
const std::vector<std::vector<double>> kAdagradGrad = {{0.25, 4.25},
                                                       {-0.52499999982176471, 2.9000000001635291},
                                                       {-0.3385576948907445, 2.6523628517374966}};

Tensor start() {
  return tensor({0.5, -0.25}, float64).requires_grad_();
}

/// Accumulates ∇f(w) into w.grad() through autograd, f(w) = 0.5 * sum((A·w − b)²).
void backward_quadratic(const Tensor& w) {
  const Tensor A = tensor({{2.0, 1.0}, {0.5, 3.0}}, float64);
  const Tensor b = tensor({1.0, -2.0}, float64);
  Tensor loss = 0.5 * (matmul(A, w) - b).pow(2.0).sum();
  loss.backward();
}

/// Two Gaussian blobs in the plane, n samples each: class 0 around (−2, −2), class 1 around
/// (2, 2), unit variance (the Bayes error is Φ(−2√2) ≈ 0.2%). Inputs float32 [2n, 2], labels
/// int64 [2n].
data::TensorDataset blobs(std::int64_t n) {
  manual_seed(3);
  const xt::xarray<float> noise = to_xarray<float>(randn({2 * n, 2}));
  xt::xarray<float> x = noise;
  xt::xarray<std::int64_t> y = xt::zeros<std::int64_t>({static_cast<std::size_t>(2 * n)});
  for (std::int64_t i = 0; i < 2 * n; ++i) {
    const bool one = i >= n;
    const auto r = static_cast<std::size_t>(i);
    x(r, 0) += one ? 2.0f : -2.0f;
    x(r, 1) += one ? 2.0f : -2.0f;
    y(r) = one ? 1 : 0;
  }
  return data::TensorDataset(from_xarray(x), from_xarray(y));
}

/// Mean cross-entropy and accuracy of `model` on the whole dataset.
std::pair<double, double> evaluate(nn::MLP& model, const data::TensorDataset& d) {
  no_grad guard;
  Tensor logits = model(d.inputs());
  const double loss = cross_entropy(logits, d.labels()).item();
  const double correct = eq(argmax(logits, 1), d.labels()).to(float64).sum().item();
  return {loss, correct / static_cast<double>(d.size())};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(custom_optimizer)

BOOST_AUTO_TEST_CASE(adagrad_matches_torch) {
  // Hand derivation of step 1 (g0 = [0.25, 4.25], see optimizer_test.cpp): sum = g0², so
  // w1 = w0 − 0.1·g0/(|g0| + 1e-10) = [0.4 + 4e-11, −0.35 + 2.35e-12] (to 3 digits).
  Tensor w = start();
  example::Adagrad opt({w}, 0.1);
  for (std::size_t k = 0; k < 3; ++k) {
    opt.zero_grad();
    backward_quadratic(w);
    expect_values(w.grad(), {2}, kAdagradGrad[k], 1e-12);
    opt.step();
    BOOST_TEST_CONTEXT("step " << k + 1) {
      expect_values(w, {2}, kAdagradW[k], 1e-12);
    }
    if (k == 0)
      expect_values(
          w, {2}, {0.5 - 0.1 * 0.25 / (0.25 + 1e-10), -0.25 - 0.1 * 4.25 / (4.25 + 1e-10)}, 1e-15);
  }
  // With torch's own gradients every step is torch's, bit for bit.
  Tensor u = start();
  example::Adagrad exact({u}, 0.1);
  for (std::size_t k = 0; k < 3; ++k) {
    u.set_grad(tensor({kAdagradGrad[k][0], kAdagradGrad[k][1]}, float64));
    exact.step();
    BOOST_TEST_CONTEXT("bit-exact, step " << k + 1) {
      expect_values(u, {2}, kAdagradW[k], 0.0);
    }
  }
}

BOOST_AUTO_TEST_CASE(adagrad_keeps_state_through_the_base_class) {
  Tensor w = start();
  example::Adagrad opt({w}, 0.1);
  for (int k = 0; k < 2; ++k) {
    opt.zero_grad();
    backward_quadratic(w);
    opt.step();
  }
  // sum = g0² + g1², saved by the base class's state_dict() with the step count.
  const optim::StateDict d = opt.state_dict();
  BOOST_TEST(d.scalars.at("state.0.step") == 2.0);
  BOOST_TEST(d.scalars.at("param_groups.0.lr") == 0.1);
  BOOST_TEST(d.scalars.at("param_groups.0.eps") == 1e-10);
  const double g0 = kAdagradGrad[0][1], g1 = kAdagradGrad[1][1];
  expect_values(d.tensors.at("state.0.sum"), {2},
                {0.0625 + kAdagradGrad[1][0] * kAdagradGrad[1][0], g0 * g0 + g1 * g1}, 1e-12);

  // A fresh Adagrad loaded from the dict takes torch's third step.
  Tensor u = w.detach().clone().requires_grad_();
  example::Adagrad resumed({u}, 0.5);  // lr comes back from the dict
  resumed.load_state_dict(d);
  BOOST_TEST(resumed.param_groups()[0].lr() == 0.1);
  backward_quadratic(u);
  resumed.step();
  expect_values(u, {2}, kAdagradW[2], 1e-12);
}

BOOST_AUTO_TEST_CASE(adagrad_checks_arguments_and_skips_parameters_without_grad) {
  expect_error([] { example::Adagrad({start()}, -0.1); }, {"Adagrad", "lr"});
  expect_error([] { example::Adagrad({start()}, 0.1, -1.0); }, {"Adagrad", "eps"});

  Tensor w = start();
  Tensor unused = tensor({1.0, 2.0}, float64).requires_grad_();
  example::Adagrad opt({unused, w}, 0.1);
  backward_quadratic(w);
  opt.step();
  expect_values(w, {2}, kAdagradW[0], 1e-12);
  expect_values(unused, {2}, {1.0, 2.0}, 0.0);
  BOOST_TEST(opt.state_dict().tensors.count("state.0.sum") == 0u);
  BOOST_TEST(opt.state_dict().tensors.count("state.1.sum") == 1u);
}

BOOST_AUTO_TEST_CASE(adagrad_trains_an_mlp_on_two_blobs) {
  const data::TensorDataset train = blobs(100);
  manual_seed(11);
  nn::MLP model({2, 16, 2});
  const auto [loss0, acc0] = evaluate(model, train);

  example::Adagrad opt(model.parameters(), 0.1);
  data::DataLoader loader(train, {.batch_size = 20, .shuffle = true, .seed = 5});
  for (int epoch = 0; epoch < 10; ++epoch) {
    for (auto& batch : loader) {
      opt.zero_grad();
      Tensor loss = cross_entropy(model(batch.inputs), batch.labels);
      loss.backward();
      opt.step();
    }
  }
  const auto [loss1, acc1] = evaluate(model, train);
  BOOST_TEST_MESSAGE("Adagrad on two blobs: loss " << loss0 << " -> " << loss1 << ", accuracy "
                                                   << acc0 << " -> " << acc1);
  BOOST_TEST(std::isfinite(loss1));
  BOOST_TEST(loss1 <= 0.5 * loss0);
  BOOST_TEST(acc1 > 0.9);
}

BOOST_AUTO_TEST_SUITE_END()
