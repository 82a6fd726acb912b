// The optimizers (SGD, RMSprop, Adam, AdamW) against torch.optim, plus the Optimizer interface:
// state_dict round trips, parameter groups, zero_grad, argument checks, parameters without grad.
//
// Reference problem: f(w) = ½‖Aw − b‖², A = [[2, 1], [0.5, 3]], b = [1, −2], w0 = [0.5, −0.25],
// float64. Each step: zero_grad, loss = 0.5 * sum((A·w − b)²) through autograd (matmul), backward,
// step. The expected parameters after steps 1, 2 and 3, and the gradients torch stepped with,
// were produced by torch 1.13.1 (Debian's python3-torch, CPU capability AVX2) with
// /usr/bin/python3 and this script, printing each value with "%.17g":
//
//   import torch
//   torch.set_default_dtype(torch.float64)
//   A = torch.tensor([[2.0, 1.0], [0.5, 3.0]]); b = torch.tensor([1.0, -2.0])
//   for cls, kw in [(torch.optim.SGD, dict(lr=0.1)), ...]:  # the configs named below
//       w = torch.tensor([0.5, -0.25], requires_grad=True)
//       opt = cls([w], foreach=False, **kw)  # the single-tensor (_single_tensor_*) code path
//       for _ in range(3):
//           opt.zero_grad()
//           loss = 0.5 * ((A @ w - b) ** 2).sum()
//           loss.backward()
//           print("grad", ", ".join("%.17g" % v for v in w.grad.tolist()))
//           opt.step()
//           print("w", ", ".join("%.17g" % v for v in w.tolist()))
//
// Hand derivation of the first gradient (every number is exact in binary):
//   A·w0 = [2·0.5 + 1·(−0.25), 0.5·0.5 + 3·(−0.25)] = [0.75, −0.5];  r = A·w0 − b = [−0.25, 1.5]
//   g0 = Aᵀ·r = [2·(−0.25) + 0.5·1.5, 1·(−0.25) + 3·1.5] = [0.25, 4.25]
// first_steps_match_hand_derivation checks the first SGD and Adam steps against it.
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "test_util.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/adamw.hpp"
#include "xgrad/optim/rmsprop.hpp"
#include "xgrad/optim/sgd.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::expect_values;
namespace optim = xgrad::optim;

namespace {

using Steps = std::vector<std::vector<double>>;
/// One torch run: w after steps 1, 2 and 3, and the gradients torch stepped with (before
/// steps 1, 2 and 3).
struct Run {
  Steps w;
  Steps grad;
};

// ---- torch 1.13.1 reference values (see the header comment) ------------------------------
// torch.optim.SGD(lr=0.1)
const Run kSgd = {{{0.47499999999999998, -0.67500000000000004},
                   {0.609375, -0.6662499999999999},
                   {0.68357812499999993, -0.71328124999999998}},
                  {{0.25, 4.25},
                   {-1.3437500000000004, -0.087500000000001021},
                   {-0.7420312499999997, 0.47031250000000069}}};
// SGD(lr=0.1, momentum=0.9)
const Run kSgdMomentum = {{{0.47499999999999998, -0.67500000000000004},
                           {0.58687500000000004, -1.0487499999999998},
                           {0.905203125, -1.0417812500000001}},
                          {{0.25, 4.25},
                           {-1.3437500000000004, -0.087500000000001021},
                           {-2.1764062499999994, -3.4334374999999975}}};
// SGD(lr=0.1, momentum=0.9, dampening=0.5)
const Run kSgdDampening = {{{0.47499999999999998, -0.67500000000000004},
                            {0.51968749999999997, -1.0531250000000001},
                            {0.68376953124999995, -1.2078203125}},
                           {{0.25, 4.25},
                            {-1.3437500000000004, -0.087500000000001021},
                            {-2.4772656250000002, -3.7123437500000014}}};
// SGD(lr=0.1, momentum=0.9, nesterov=True)
const Run kSgdNesterov = {{{0.45250000000000001, -1.0574999999999999},
                           {0.96009374999999986, -0.64341250000000005},
                           {1.0094904843749999, -0.99592484375000012}},
                          {{0.25, 4.25},
                           {-2.7781249999999993, -3.9912499999999986},
                           {0.82845468749999951, 1.9262031249999996}}};
// SGD(lr=0.1, weight_decay=0.01)
const Run kSgdWeightDecay = {
    {{0.47449999999999998, -0.67474999999999996},
     {0.60852549999999994, -0.66540025000000003},
     {0.68218372449999998, -0.71231852475000002}},
    {{0.25, 4.25}, {-1.345, -0.086749999999999772}, {-0.74266750000000037, 0.47583674999999936}}};
// RMSprop(lr=0.01)
const Run kRmsprop = {{{0.40000003999998407, -0.34999999764705886},
                       {0.49036963023124835, -0.40655710989137428},
                       {0.54094497963277899, -0.45266166173787831}},
                      {{0.25, 4.25},
                       {-0.52499982176477356, 2.9000001635293557},
                       {-0.33887895613700447, 2.6507226068956262}}};
// RMSprop(lr=0.01, centered=True)
const Run kRmspropCentered = {{{0.39949625887810303, -0.35050377914921299},
                               {0.49009301123597493, -0.40752076171847829},
                               {0.54115939636157373, -0.454173584135796}},
                              {{0.25, 4.25},
                               {-0.52890412679030752, 2.8931991145812304},
                               {-0.34342736826178055, 2.6401179221411293}}};
// RMSprop(lr=0.01, momentum=0.9)
const Run kRmspropMomentum = {{{0.40000003999998407, -0.34999999764705886},
                               {0.40036966623123399, -0.49655710777372719},
                               {0.48803674458542884, -0.65554749101602938}},
                              {{0.25, 4.25},
                               {-0.52499982176477356, 2.9000001635293557},
                               {-1.0363787957253008, 1.4357227540720472}}};
// RMSprop(lr=0.01, weight_decay=0.01)
const Run kRmspropWeightDecay = {{{0.40000003921567095, -0.34999999764567397},
                                  {0.48990571086900053, -0.40653329125985183},
                                  {0.54023949732496179, -0.45259167119000526}},
                                 {{0.25, 4.25},
                                  {-0.52499982509325738, 2.9000001607981094},
                                  {-0.34076724821622917, 2.6493370754429835}}};
// Adam(lr=0.1)
const Run kAdam = {{{0.4000000039999998, -0.34999999976470586},
                    {0.43839507960337443, -0.44729618616171096},
                    {0.50653343317473709, -0.54087884280483967}},
                   {{0.25, 4.25},
                    {-0.52499998217647137, 2.9000000163529407},
                    {-0.702357563251647, 2.0614209169947011}}};
// Adam(lr=0.1, betas=(0.9, 0.5), amsgrad=True). With the default β₂ = 0.999, v̂ = max(v̂, v)
// never bites within three steps here (torch gives exactly kAdam); with β₂ = 0.5 the second
// coordinate's v falls at step 2 (g: 4.25 → 2.9), so the max is what is tested.
const Run kAdamAmsgrad = {{{0.4000000039999998, -0.34999999976470592},
                           {0.43490860998828729, -0.45199887600496996},
                           {0.4938173714319708, -0.54451335500646092}},
                          {{0.25, 4.25},
                           {-0.52499998217647148, 2.9000000163529398},
                           {-0.73363447356717404, 2.0021913749093057}}};
// Adam(lr=0.1, betas=(0.9, 0.5)): the same without amsgrad, for contrast.
const Run kAdamBeta2Half = {{{0.4000000039999998, -0.34999999976470592},
                             {0.43490860998828729, -0.45379955968412972},
                             {0.49379328284696938, -0.56406787560009519}},
                            {{0.25, 4.25},
                             {-0.52499998217647148, 2.9000000163529398},
                             {-0.73993686644423318, 1.9841845381177081}}};
// Adam(lr=0.1, weight_decay=0.01)
const Run kAdamWeightDecay = {{{0.40000000392156848, -0.34999999976456742},
                               {0.43739923793531921, -0.44728935554307148},
                               {0.50506700230420454, -0.54083411977632023}},
                              {{0.25, 4.25},
                               {-0.5249999825093199, 2.9000000160798156},
                               {-0.70656598317564356, 2.0580037773429023}}};
// AdamW(lr=0.1, weight_decay=0.01)
const Run kAdamW = {{{0.39950000399999985, -0.34974999976470589},
                     {0.43758084431190636, -0.44669928671379378},
                     {0.50532372868043185, -0.53985274456496846}},
                    {{0.25, 4.25},
                     {-0.52624998217647123, 2.9007500163529407},
                     {-0.70372891517267622, 2.0645400879537341}}};

// ---- the problem ---------------------------------------------------------------------------

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

/// One training step: zero_grad, backward, step.
void train_step(optim::Optimizer& opt, const Tensor& w) {
  opt.zero_grad();
  backward_quadratic(w);
  opt.step();
}

/// Distance in units in the last place between two finite doubles of the same sign.
std::int64_t ulps(double a, double b) {
  const auto ia = std::bit_cast<std::int64_t>(a), ib = std::bit_cast<std::int64_t>(b);
  return ia > ib ? ia - ib : ib - ia;
}

/// Runs steps first_step.. of `ref` on w (zero_grad, autograd backward, step), checking w after
/// each against torch's to 1e-12; logs (--log_level=message) the worst difference in ulps.
void expect_torch_steps(optim::Optimizer& opt, const Tensor& w, const Run& ref,
                        std::size_t first_step = 0, std::size_t end_step = 3) {
  std::int64_t worst = 0;
  for (std::size_t k = first_step; k < end_step; ++k) {
    train_step(opt, w);
    BOOST_TEST_CONTEXT("step " << k + 1) {
      expect_values(w, {2}, ref.w[k], 1e-12);
    }
    const double* p = w.data_ptr<double>();
    for (std::size_t i = 0; i < 2; ++i) worst = std::max(worst, ulps(p[i], ref.w[k][i]));
  }
  BOOST_TEST_MESSAGE(boost::unit_test::framework::current_test_case().p_name.get()
                     << ": autograd gradients, worst difference from torch " << worst << " ulp");
}

using Factory = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

/// The two checks of an optimizer against torch: (1) three steps with gradients from xgrad's
/// autograd agree with torch's parameters to 1e-12 (the gradients themselves may differ from
/// torch's in the last bit: the matmul goes through a different BLAS); (2) three steps with
/// torch's own gradients give torch's parameters bit for bit, which checks the update's
/// operation order and fused roundings.
void expect_matches_torch(const Factory& make, const Run& ref) {
  Tensor w = start();
  auto opt = make({w});
  expect_torch_steps(*opt, w, ref);

  Tensor u = start();
  auto exact = make({u});
  for (std::size_t k = 0; k < 3; ++k) {
    u.set_grad(tensor({ref.grad[k][0], ref.grad[k][1]}, float64));
    exact->step();
    BOOST_TEST_CONTEXT("bit-exact, step " << k + 1) {
      expect_values(u, {2}, ref.w[k], 0.0);
    }
  }
}

/// The values of a float64 tensor, row-major.
std::vector<double> values(const Tensor& t) {
  xt::xarray<double> a = to_xarray<double>(t);
  return std::vector<double>(a.begin(), a.end());
}

/// One configuration of every optimizer (with its state-carrying options on), its torch steps.
struct Config {
  std::string name;
  Factory make;
  const Run* ref;
  bool counts_steps;  // keeps state.<i>.step (all but SGD, as in torch)
};

std::vector<Config> stateful_configs() {
  return {
      {"SGD momentum",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::SGD>(std::move(p), optim::SGDOptions(0.1).momentum(0.9));
       },
       &kSgdMomentum, false},
      {"RMSprop centered",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::RMSprop>(std::move(p),
                                                 optim::RMSpropOptions(0.01).centered(true));
       },
       &kRmspropCentered, true},
      {"RMSprop momentum",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::RMSprop>(std::move(p),
                                                 optim::RMSpropOptions(0.01).momentum(0.9));
       },
       &kRmspropMomentum, true},
      {"Adam amsgrad",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::Adam>(
             std::move(p), optim::AdamOptions(0.1).betas(0.9, 0.5).amsgrad(true));
       },
       &kAdamAmsgrad, true},
      {"AdamW",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::AdamW>(std::move(p),
                                               optim::AdamWOptions(0.1).weight_decay(0.01));
       },
       &kAdamW, true},
  };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(optimizer)

// ---- the first steps against hand derivations and torch ------------------------------------

BOOST_AUTO_TEST_CASE(first_steps_match_hand_derivation) {
  Tensor w = start();
  backward_quadratic(w);
  expect_values(w.grad(), {2}, {0.25, 4.25}, 0.0);  // g0, exact (header comment)

  // SGD, lr 0.1: w1 = w0 − 0.1·g0 = [0.5 − 0.025, −0.25 − 0.425] = [0.475, −0.675].
  optim::SGD sgd({w}, optim::SGDOptions(0.1));
  sgd.step();
  expect_values(w, {2}, {0.475, -0.675}, 1e-15);
  BOOST_TEST(w.data_ptr<double>()[0] == kSgd.w[0][0]);  // torch's value is the rounded 0.475
  BOOST_TEST(w.data_ptr<double>()[1] == kSgd.w[0][1]);

  // Adam, lr 0.1, β = (0.9, 0.999), ε = 1e-8, t = 1: m = (1 − β₁)·g0, v = (1 − β₂)·g0², so
  // m/(1 − β₁) = g0 and √v/√(1 − β₂) = |g0|; w1 = w0 − 0.1·g0/(|g0| + ε)
  //   = [0.5 − 0.1·0.25/0.25000001, −0.25 − 0.1·4.25/4.25000001]
  //   = [0.4 + 3.99999984e-9, −0.35 + 2.35294117e-10]: nearly lr·sign(g0), as Adam's first step is.
  Tensor u = start();
  optim::Adam adam({u}, optim::AdamOptions(0.1));
  backward_quadratic(u);
  adam.step();
  const std::vector<double> hand = {0.5 - 0.1 * 0.25 / (0.25 + 1e-8),
                                    -0.25 - 0.1 * 4.25 / (4.25 + 1e-8)};
  expect_values(u, {2}, hand, 1e-15);
  expect_values(u, {2}, kAdam.w[0], 1e-15);
  BOOST_TEST(std::abs(hand[0] - 0.400000004) < 1e-15);
  BOOST_TEST(std::abs(hand[1] - (-0.35 + 0.1 * 1e-8 / 4.25)) < 1e-15);
}

BOOST_AUTO_TEST_CASE(sgd_matches_torch) {
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::SGD>(std::move(p), optim::SGDOptions(0.1));
      },
      kSgd);
}

BOOST_AUTO_TEST_CASE(sgd_momentum_matches_torch) {
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::SGD>(std::move(p), optim::SGDOptions(0.1).momentum(0.9));
      },
      kSgdMomentum);
}

BOOST_AUTO_TEST_CASE(sgd_momentum_dampening_matches_torch) {
  // torch's first step sets the buffer to g (no dampening), then b ← 0.9·b + 0.5·g: step 1
  // equals kSgdMomentum's, step 2 differs.
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::SGD>(std::move(p),
                                            optim::SGDOptions(0.1).momentum(0.9).dampening(0.5));
      },
      kSgdDampening);
}

BOOST_AUTO_TEST_CASE(sgd_nesterov_matches_torch) {
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::SGD>(std::move(p),
                                            optim::SGDOptions(0.1).momentum(0.9).nesterov(true));
      },
      kSgdNesterov);
}

BOOST_AUTO_TEST_CASE(sgd_weight_decay_matches_torch) {
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::SGD>(std::move(p),
                                            optim::SGDOptions(0.1).weight_decay(0.01));
      },
      kSgdWeightDecay);
}

BOOST_AUTO_TEST_CASE(rmsprop_matches_torch) {
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::RMSprop>(std::move(p), optim::RMSpropOptions(0.01));
      },
      kRmsprop);
}

BOOST_AUTO_TEST_CASE(rmsprop_centered_matches_torch) {
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::RMSprop>(std::move(p),
                                                optim::RMSpropOptions(0.01).centered(true));
      },
      kRmspropCentered);
}

BOOST_AUTO_TEST_CASE(rmsprop_momentum_matches_torch) {
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::RMSprop>(std::move(p),
                                                optim::RMSpropOptions(0.01).momentum(0.9));
      },
      kRmspropMomentum);
}

BOOST_AUTO_TEST_CASE(rmsprop_weight_decay_matches_torch) {
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::RMSprop>(std::move(p),
                                                optim::RMSpropOptions(0.01).weight_decay(0.01));
      },
      kRmspropWeightDecay);
}

BOOST_AUTO_TEST_CASE(adam_matches_torch) {
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::Adam>(std::move(p), optim::AdamOptions(0.1));
      },
      kAdam);
}

BOOST_AUTO_TEST_CASE(adam_amsgrad_matches_torch) {
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::Adam>(std::move(p),
                                             optim::AdamOptions(0.1).betas(0.9, 0.5).amsgrad(true));
      },
      kAdamAmsgrad);
  // The max must have mattered: plain Adam with the same betas ends elsewhere.
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::Adam>(std::move(p), optim::AdamOptions(0.1).betas(0.9, 0.5));
      },
      kAdamBeta2Half);
  BOOST_TEST(kAdamAmsgrad.w[1][0] == kAdamBeta2Half.w[1][0]);  // v̂ = v for coordinate 0
  BOOST_TEST(std::abs(kAdamAmsgrad.w[2][1] - kAdamBeta2Half.w[2][1]) > 1e-2);
}

BOOST_AUTO_TEST_CASE(adam_weight_decay_matches_torch) {
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::Adam>(std::move(p),
                                             optim::AdamOptions(0.1).weight_decay(0.01));
      },
      kAdamWeightDecay);
}

BOOST_AUTO_TEST_CASE(adamw_matches_torch) {
  expect_matches_torch(
      [](std::vector<Tensor> p) {
        return std::make_unique<optim::AdamW>(std::move(p),
                                              optim::AdamWOptions(0.1).weight_decay(0.01));
      },
      kAdamW);
}

BOOST_AUTO_TEST_CASE(adamw_defaults_to_weight_decay_0_01) {
  Tensor w = start();
  optim::AdamW opt({w}, optim::AdamWOptions(0.1));
  BOOST_TEST(opt.param_groups()[0].option("weight_decay") == 0.01);
  BOOST_TEST(opt.param_groups()[0].option("beta1") == 0.9);
  BOOST_TEST(opt.param_groups()[0].option("beta2") == 0.999);
  BOOST_TEST(opt.param_groups()[0].option("eps") == 1e-8);
  expect_torch_steps(opt, w, kAdamW);  // torch's AdamW(lr=0.1) is kAdamW: wd 0.01 by default
}

// ---- state_dict / load_state_dict ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(state_dict_round_trip_continues_identically) {
  for (const Config& c : stateful_configs()) {
    BOOST_TEST_CONTEXT(c.name) {
      // Two steps, save, load into a fresh optimizer over a copy of w: the third step of both
      // is the same, bit for bit, and is torch's third step.
      Tensor w = start();
      auto a = c.make({w});
      expect_torch_steps(*a, w, *c.ref, 0, 2);
      const optim::StateDict dict = a->state_dict();
      if (c.counts_steps) BOOST_TEST(dict.scalars.at("state.0.step") == 2.0);
      BOOST_TEST(dict.scalars.count("state.0.step") == (c.counts_steps ? 1u : 0u));
      BOOST_TEST(dict.scalars.at("param_groups.0.lr") == a->param_groups()[0].lr());
      BOOST_TEST(!dict.tensors.empty());
      std::map<std::string, std::vector<double>> saved;
      for (const auto& [key, t] : dict.tensors) saved[key] = values(t);

      Tensor w2 = w.detach().clone().requires_grad_();
      Tensor w3 = w.detach().clone().requires_grad_();
      auto b = c.make({w2});
      b->load_state_dict(dict);
      const optim::StateDict reloaded = b->state_dict();
      BOOST_TEST(reloaded.scalars == dict.scalars);
      BOOST_TEST(reloaded.tensors.size() == dict.tensors.size());
      for (const auto& [key, v] : saved) BOOST_TEST_CONTEXT(key) {
          expect_values(reloaded.tensors.at(key), {2}, v, 0.0);
        }

      train_step(*a, w);
      train_step(*b, w2);
      expect_values(w2, {2}, values(w), 0.0);
      expect_values(w2, {2}, c.ref->w[2], 1e-12);
      // The dict is a snapshot: a's third step did not write into it.
      for (const auto& [key, v] : saved) BOOST_TEST_CONTEXT(key) {
          expect_values(dict.tensors.at(key), {2}, v, 0.0);
        }

      // Without the loaded state the third step lands elsewhere: the check is not vacuous.
      auto fresh = c.make({w3});
      train_step(*fresh, w3);
      const std::vector<double> v3 = values(w3);
      BOOST_TEST(std::abs(v3[0] - c.ref->w[2][0]) + std::abs(v3[1] - c.ref->w[2][1]) > 1e-6);
    }
  }
}

BOOST_AUTO_TEST_CASE(state_dict_names_torch_state_keys) {
  Tensor w = start();
  optim::Adam adam({w}, optim::AdamOptions(0.1).amsgrad(true));
  BOOST_TEST(adam.state_dict().tensors.empty());  // no state before the first step
  train_step(adam, w);
  const optim::StateDict d = adam.state_dict();
  BOOST_TEST(d.tensors.size() == 3u);
  // After one step from zero: m = 0.1·g0, v = 0.001·g0² (g0 = [0.25, 4.25]).
  expect_values(d.tensors.at("state.0.exp_avg"), {2}, {0.1 * 0.25, 0.1 * 4.25}, 1e-15);
  expect_values(d.tensors.at("state.0.exp_avg_sq"), {2}, {0.001 * 0.0625, 0.001 * 18.0625}, 1e-15);
  expect_values(d.tensors.at("state.0.max_exp_avg_sq"), {2},
                values(d.tensors.at("state.0.exp_avg_sq")), 0.0);
  BOOST_TEST(d.scalars.at("state.0.step") == 1.0);
  BOOST_TEST(d.scalars.at("param_groups.0.lr") == 0.1);
  BOOST_TEST(d.scalars.at("param_groups.0.beta1") == 0.9);
  BOOST_TEST(d.scalars.at("param_groups.0.beta2") == 0.999);
  BOOST_TEST(d.scalars.at("param_groups.0.eps") == 1e-8);
  BOOST_TEST(d.scalars.at("param_groups.0.amsgrad") == 1.0);
  BOOST_TEST(d.scalars.at("param_groups.0.params") == 1.0);

  Tensor v = start();
  optim::SGD sgd({v}, optim::SGDOptions(0.1).momentum(0.9));
  train_step(sgd, v);
  const optim::StateDict s = sgd.state_dict();
  expect_values(s.tensors.at("state.0.momentum_buffer"), {2}, {0.25, 4.25}, 0.0);  // b = g0
  BOOST_TEST(s.scalars.count("state.0.step") == 0u);  // SGD keeps no step count, as torch
}

BOOST_AUTO_TEST_CASE(load_state_dict_restores_hyperparameters) {
  Tensor w = start();
  optim::SGD a({w}, optim::SGDOptions(0.1));
  a.param_groups()[0].set_lr(0.05);
  Tensor u = start();
  optim::SGD b({u}, optim::SGDOptions(0.1));
  b.load_state_dict(a.state_dict());
  BOOST_TEST(b.param_groups()[0].lr() == 0.05);
  train_step(b, u);
  expect_values(u, {2}, {0.5 - 0.05 * 0.25, -0.25 - 0.05 * 4.25}, 1e-15);
}

BOOST_AUTO_TEST_CASE(load_state_dict_rejects_mismatched_parameters) {
  Tensor w = start();
  optim::Adam a({w}, optim::AdamOptions(0.1));
  train_step(a, w);
  const optim::StateDict d = a.state_dict();
  BOOST_TEST(d.scalars.at("param_groups.0.params") == 1.0);

  Tensor wrong_shape = zeros({3}, float64).requires_grad_();
  optim::Adam b({wrong_shape}, optim::AdamOptions(0.1));
  expect_error([&] { b.load_state_dict(d); }, {"load_state_dict", "[2]", "[3]"});

  // A dict saved from two parameters fits neither an optimizer over one nor one over three.
  Tensor p = start(), q = start();
  optim::Adam two({p, q}, optim::AdamOptions(0.1));
  train_step(two, p);
  q.set_grad(ones({2}, float64));
  two.step();
  Tensor r = start();
  optim::Adam one({r}, optim::AdamOptions(0.1));
  expect_error([&] { one.load_state_dict(two.state_dict()); }, {"load_state_dict", "parameter"});
  Tensor s = start(), t = start(), x = start();
  optim::Adam three({s, t, x}, optim::AdamOptions(0.1));
  expect_error([&] { three.load_state_dict(two.state_dict()); },
               {"load_state_dict", "group 0 has 2 parameters in the dict but 3"});
  // Nor one with another number of groups.
  Tensor y = start(), z = start();
  optim::Adam split({optim::ParamGroup({y}), optim::ParamGroup({z})}, optim::AdamOptions(0.1));
  expect_error([&] { split.load_state_dict(two.state_dict()); },
               {"load_state_dict", "1 parameter groups but the optimizer has 2"});

  // Malformed keys are refused, not ignored.
  optim::StateDict bad = d;
  bad.scalars["state.x.step"] = 1;
  expect_error([&] { one.load_state_dict(bad); },
               {"load_state_dict", "malformed key 'state.x.step'"});
  bad = d;
  bad.scalars["lr"] = 1;
  expect_error([&] { one.load_state_dict(bad); }, {"load_state_dict", "unexpected key 'lr'"});
}

BOOST_AUTO_TEST_CASE(failed_load_state_dict_leaves_the_optimizer_unchanged) {
  // The dict's parameter 0 fits but its parameter 1 does not: nothing may be loaded, neither
  // the group's lr nor parameter 0's state (the first check used to come after both).
  Tensor p = start(), q = start();
  optim::Adam saved({p, q}, optim::AdamOptions(0.1));
  train_step(saved, p);
  q.set_grad(ones({2}, float64));
  saved.step();

  Tensor u = start(), v = zeros({3}, float64).requires_grad_();
  optim::Adam target({u, v}, optim::AdamOptions(0.5));
  expect_error([&] { target.load_state_dict(saved.state_dict()); },
               {"load_state_dict", "state.1.", "[2]", "[3]"});
  BOOST_TEST(target.param_groups()[0].lr() == 0.5);
  BOOST_TEST(target.state_dict().tensors.empty());
  // It still works as a fresh Adam(lr=0.5): step 1 moves each coordinate by about 0.5.
  train_step(target, u);
  expect_values(u, {2}, {0.5 - 0.5 * 0.25 / (0.25 + 1e-8), -0.25 - 0.5 * 4.25 / (4.25 + 1e-8)},
                1e-15);
}

// ---- parameter groups, zero_grad, checks, parameters without grad ----------------------------

BOOST_AUTO_TEST_CASE(param_groups_use_their_own_lr) {
  Tensor p = tensor({1.0, 2.0}, float64).requires_grad_();
  Tensor q = tensor({1.0, 2.0}, float64).requires_grad_();
  optim::SGD opt({optim::ParamGroup({p}, {{"lr", 0.5}}), optim::ParamGroup({q})},
                 optim::SGDOptions(0.25).momentum(0.0));
  BOOST_TEST(opt.param_groups().size() == 2u);
  BOOST_TEST(opt.param_groups()[0].lr() == 0.5);   // the group's own
  BOOST_TEST(opt.param_groups()[1].lr() == 0.25);  // from the defaults
  BOOST_TEST(opt.param_groups()[0].option("momentum") == 0.0);

  p.set_grad(tensor({1.0, -2.0}, float64));
  q.set_grad(tensor({1.0, -2.0}, float64));
  opt.step();
  expect_values(p, {2}, {0.5, 3.0}, 0.0);   // 1 − 0.5·1, 2 + 0.5·2
  expect_values(q, {2}, {0.75, 2.5}, 0.0);  // 1 − 0.25·1, 2 + 0.25·2

  // Changing a group's lr takes effect at the next step; add_param_group fills in defaults.
  opt.param_groups()[1].set_lr(1.0);
  Tensor r = tensor({4.0}, float64).requires_grad_();
  opt.add_param_group(optim::ParamGroup({r}));
  BOOST_TEST(opt.param_groups()[2].lr() == 0.25);
  r.set_grad(tensor({4.0}, float64));
  opt.step();
  expect_values(p, {2}, {0.0, 4.0}, 0.0);
  expect_values(q, {2}, {-0.25, 4.5}, 0.0);
  expect_values(r, {1}, {3.0}, 0.0);
  expect_error([&] { opt.add_param_group(optim::ParamGroup({p})); },
               {"optimizer", "more than one place"});
}

BOOST_AUTO_TEST_CASE(zero_grad_drops_or_zeroes_every_gradient) {
  Tensor p = start(), q = start();
  optim::Adam opt({optim::ParamGroup({p}), optim::ParamGroup({q})}, optim::AdamOptions(0.1));
  backward_quadratic(p);
  backward_quadratic(q);
  BOOST_TEST(p.grad().defined());
  opt.zero_grad();  // set_to_none, the default
  BOOST_TEST(!p.grad().defined());
  BOOST_TEST(!q.grad().defined());

  backward_quadratic(p);
  backward_quadratic(p);  // accumulates: 2·g0
  expect_values(p.grad(), {2}, {0.5, 8.5}, 0.0);
  opt.zero_grad(/*set_to_none=*/false);
  expect_values(p.grad(), {2}, {0.0, 0.0}, 0.0);
  BOOST_TEST(!q.grad().defined());  // none stays none

  // The next backward accumulates into the zeroed gradient.
  backward_quadratic(p);
  expect_values(p.grad(), {2}, {0.25, 4.25}, 0.0);
}

BOOST_AUTO_TEST_CASE(invalid_hyperparameters_throw_naming_the_optimizer) {
  const std::vector<Tensor> w = {start()};
  using namespace optim;
  expect_error([&] { SGD(w, SGDOptions(-0.1)); }, {"SGD", "lr", "-0.1"});
  expect_error([&] { SGD(w, SGDOptions(0.1).momentum(-0.5)); }, {"SGD", "momentum"});
  expect_error([&] { SGD(w, SGDOptions(0.1).weight_decay(-1)); }, {"SGD", "weight_decay"});
  expect_error([&] { SGD(w, SGDOptions(0.1).nesterov(true)); }, {"SGD", "nesterov"});
  expect_error([&] { SGD(w, SGDOptions(0.1).momentum(0.9).dampening(0.5).nesterov(true)); },
               {"SGD", "nesterov"});
  expect_error([&] { RMSprop(w, RMSpropOptions(-0.01)); }, {"RMSprop", "lr"});
  expect_error([&] { RMSprop(w, RMSpropOptions(0.01).alpha(-0.9)); }, {"RMSprop", "alpha"});
  expect_error([&] { RMSprop(w, RMSpropOptions(0.01).eps(-1e-8)); }, {"RMSprop", "eps"});
  expect_error([&] { RMSprop(w, RMSpropOptions(0.01).momentum(-0.9)); }, {"RMSprop", "momentum"});
  expect_error([&] { Adam(w, AdamOptions(-1e-3)); }, {"Adam", "lr"});
  expect_error([&] { Adam(w, AdamOptions().betas(1.0, 0.999)); }, {"Adam", "beta1", "[0, 1)"});
  expect_error([&] { Adam(w, AdamOptions().betas(-0.1, 0.999)); }, {"Adam", "beta1"});
  expect_error([&] { Adam(w, AdamOptions().betas(0.9, 1.5)); }, {"Adam", "beta2", "[0, 1)"});
  expect_error([&] { Adam(w, AdamOptions().eps(-1.0)); }, {"Adam", "eps"});
  expect_error([&] { Adam(w, AdamOptions().weight_decay(-0.01)); }, {"Adam", "weight_decay"});
  expect_error([&] { AdamW(w, AdamWOptions(-1e-3)); }, {"AdamW: invalid lr"});
  expect_error([&] { AdamW(w, AdamWOptions().betas(0.9, 1.0)); }, {"AdamW: invalid beta2"});
  // The boundaries themselves are valid, as in torch.
  BOOST_CHECK_NO_THROW(SGD(w, SGDOptions(0.0)));
  BOOST_CHECK_NO_THROW(Adam(w, AdamOptions(0.0).betas(0.0, 0.0)));
  // Parameters must be leaves that require grad, and contiguous: the fused loops would
  // otherwise update a transposed parameter's elements in storage order, i.e. the wrong ones.
  expect_error([&] { SGD({tensor({1.0}, float64)}, SGDOptions(0.1)); }, {"requires grad"});
  Tensor transposed = tensor({{1.0, 2.0}, {3.0, 4.0}}, float64).t();
  transposed.requires_grad_();
  BOOST_TEST(transposed.is_leaf());
  expect_error([&] { SGD({transposed}, SGDOptions(0.1)); }, {"optimizer", "contiguous"});
  expect_error([&] { Adam({transposed}, AdamOptions(0.1)); }, {"optimizer", "contiguous"});
}

BOOST_AUTO_TEST_CASE(parameter_without_grad_is_skipped) {
  for (const Config& c : stateful_configs()) {
    BOOST_TEST_CONTEXT(c.name) {
      Tensor w = start();
      Tensor unused = tensor({1.0, 2.0}, float64).requires_grad_();
      auto opt = c.make({unused, w});
      expect_torch_steps(*opt, w, *c.ref);  // w as if alone: unused disturbs nothing
      BOOST_TEST(!unused.grad().defined());
      expect_values(unused, {2}, {1.0, 2.0}, 0.0);  // not even AdamW's decay touches it
      for (const auto& [key, t] : opt->state_dict().tensors)
        BOOST_CHECK_MESSAGE(key.rfind("state.0.", 0) != 0,
                            key << " is state of the unused parameter");
      BOOST_TEST(opt->state_dict().scalars.count("state.0.step") == 0u);
      BOOST_TEST(opt->state_dict().scalars.count("state.1.step") == (c.counts_steps ? 1u : 0u));
    }
  }
}

BOOST_AUTO_TEST_CASE(steps_leave_parameters_as_leaves_and_bump_versions) {
  Tensor w = start();
  optim::Adam opt({w}, optim::AdamOptions(0.1));
  backward_quadratic(w);
  const auto before = w.version();
  opt.step();
  BOOST_TEST(w.version() > before);
  BOOST_TEST(w.is_leaf());
  BOOST_TEST(w.requires_grad());
  BOOST_TEST(is_grad_enabled());  // the step's no_grad guard is gone
}

BOOST_AUTO_TEST_SUITE_END()
