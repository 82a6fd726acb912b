// viz::GradientFlightRecorder: the recorded norms, update-to-weight ratios and dead units are
// those of the real gradients and updates; the ring buffer keeps the newest steps; the
// triggers fire once when their condition starts, naming the module and the step; and on a
// run whose learning rate makes it blow up, the first exploding module and step come before
// the loss turns NaN.
#include <cmath>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/optim/sgd.hpp"
#include "xgrad/viz/recorder.hpp"
#include "xgrad/xgrad.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::make;

namespace {

// Leaves "lin.weight" [2,3] and "lin.bias" [2] whose gradients after backward() are
// `gw` and `gb` (the loss is sum(w * gw) + sum(b * gb)), and "head" [3] with gradient `gh`.
struct Toy {
  Tensor w = make({1, 2, 2, 0, 0, 1}, {2, 3}).requires_grad_();
  Tensor b = make({3, 4}, {2}).requires_grad_();
  Tensor h = make({2, 0, 0}, {3}).requires_grad_();
  std::vector<std::pair<std::string, Tensor>> named() {
    return {{"lin.weight", w}, {"lin.bias", b}, {"head", h}};
  }
  void backward(const std::vector<double>& gw, const std::vector<double>& gb,
                const std::vector<double>& gh) {
    w.zero_grad();
    b.zero_grad();
    h.zero_grad();
    Tensor loss =
        (w * make(gw, {2, 3})).sum() + (b * make(gb, {2})).sum() + (h * make(gh, {3})).sum();
    loss.backward();
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(viz_recorder)

BOOST_AUTO_TEST_CASE(norms_dead_units_and_update_ratios_are_those_of_the_step) {
  Toy t;
  viz::GradientFlightRecorder rec(t.named());
  BOOST_TEST(rec.module_names() == (std::vector<std::string>{"lin", "(root)"}),
             boost::test_tools::per_element());
  BOOST_TEST(rec.parameter_names().size() == 3u);
  // Row 1 of the weight's gradient is zero: its unit is dead.
  t.backward({3, 0, 4, 0, 0, 0}, {0, 12}, {1, 2, 2});
  BOOST_TEST(rec.record_gradients(1, 2.5).empty());
  {
    no_grad g;  // an SGD step with lr 0.5, by hand
    optim::SGD opt({t.w, t.b, t.h}, optim::SGDOptions(0.5));
    opt.step();
  }
  rec.record_update(0.5);
  const viz::StepRecord& r = rec.back();
  BOOST_TEST(r.step == 1);
  BOOST_TEST(r.loss == 2.5);
  BOOST_TEST(r.lr == 0.5);
  BOOST_TEST(r.params[0].grad_norm == 5.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(r.params[0].units == 2);
  BOOST_TEST(r.params[0].dead_units == 1);
  BOOST_TEST(r.params[1].grad_norm == 12.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(r.params[1].units == 0);  // a vector has no units
  BOOST_TEST(r.params[2].grad_norm == 3.0, boost::test_tools::tolerance(1e-12));
  // Module lin: sqrt(5^2 + 12^2) = 13, 1 of 2 units dead.
  BOOST_TEST(r.modules[0].grad_norm == 13.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(r.modules[0].dead_share() == 0.5);
  BOOST_TEST(r.modules[1].grad_norm == 3.0, boost::test_tools::tolerance(1e-12));
  // Update ratio: ||0.5 g|| / ||w||: weight 2.5 / sqrt(10), bias 6 / 5, lin sqrt(2.5^2 + 6^2)
  // / sqrt(10 + 25) = 6.5 / sqrt(35), head 1.5 / 2.
  BOOST_TEST(r.params[0].update_ratio == 2.5 / std::sqrt(10.0),
             boost::test_tools::tolerance(1e-12));
  BOOST_TEST(r.params[1].update_ratio == 6.0 / 5.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(r.modules[0].update_ratio == 6.5 / std::sqrt(35.0),
             boost::test_tools::tolerance(1e-12));
  BOOST_TEST(r.modules[1].update_ratio == 0.75, boost::test_tools::tolerance(1e-12));
  // CSV: a header and one row per module and parameter.
  const std::string csv = rec.csv();
  BOOST_TEST(csv.find("step,loss,lr,kind,name,grad_norm,update_ratio,dead_units,units\n") == 0u);
  BOOST_TEST(csv.find("\n1,2.5,0.5,module,lin,13,") != std::string::npos);
  BOOST_TEST(csv.find(",1,2\n") != std::string::npos);  // lin's dead units and units
  BOOST_TEST(csv.find("\n1,2.5,0.5,param,head,3,0.75,0,0\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sampled_update_ratio_of_a_uniform_update_is_exact) {
  // Every entry moves by the same fraction: the sampled ratio equals the full one.
  Tensor w = full({100, 50}, 2.0, float64).requires_grad_();
  viz::GradientFlightRecorder rec({{"w", w}}, {.update_sample = 7});
  (w * 1.0).sum().backward();
  rec.record_gradients(1);
  {
    no_grad g;
    optim::SGD opt({w}, optim::SGDOptions(0.2));
    opt.step();
  }
  rec.record_update();
  BOOST_TEST(rec.back().params[0].update_ratio == 0.1, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(rec.back().modules[0].update_ratio == 0.1, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(triggers_name_module_and_step_and_fire_once) {
  Toy t;
  viz::GradientFlightRecorder rec(t.named(), {.explode_factor = 10, .dead_share = 0.9});
  auto step = [&](std::int64_t s, double scale, double head) {
    t.backward({scale, scale, scale, scale, scale, scale}, {scale, scale}, {head, head, head});
    auto fired = rec.record_gradients(s);
    rec.record_update();
    return fired;
  };
  BOOST_TEST(step(1, 1, 1).empty());
  BOOST_TEST(step(2, 2, 1).empty());  // twice the mean: not exploding
  auto fired = step(3, 1000, 1);
  BOOST_REQUIRE_EQUAL(fired.size(), 1u);
  BOOST_TEST(fired[0].kind == viz::TriggerKind::exploding);
  BOOST_TEST(fired[0].module == "lin");
  BOOST_TEST(fired[0].step == 3);
  // The running mean after steps 1 and 2: 0.9 * norm1 + 0.1 * norm2 = 1.1 * sqrt(8).
  BOOST_TEST(fired[0].threshold == 10 * 1.1 * std::sqrt(8.0), boost::test_tools::tolerance(1e-12));
  BOOST_TEST(fired[0].value == 1000 * std::sqrt(8.0), boost::test_tools::tolerance(1e-12));
  BOOST_TEST(fired[0].message().find("step 3: module lin: gradient norm 2.83e+03 exceeds") == 0u);
  // lin's gradient vanishes: vanishing and dead (both its units), once for three steps.
  fired = step(4, 0, 1);
  BOOST_REQUIRE_EQUAL(fired.size(), 2u);
  BOOST_TEST(fired[0].kind == viz::TriggerKind::vanishing);
  BOOST_TEST(fired[1].kind == viz::TriggerKind::dead);
  BOOST_TEST(fired[1].value == 1.0);
  BOOST_TEST(step(5, 0, 1).empty());
  BOOST_TEST(step(6, 0, 1).empty());
  // NaN in the head; lin recovers and the dead trigger is re-armed.
  fired = step(7, 1, NAN);
  BOOST_REQUIRE_EQUAL(fired.size(), 1u);
  BOOST_TEST(fired[0].kind == viz::TriggerKind::nan);
  BOOST_TEST(fired[0].module == "(root)");
  BOOST_TEST(step(8, 0, 1).size() == 2u);  // lin dead again: fires again
  BOOST_TEST(rec.total_events() == 6);
  BOOST_TEST(rec.first_event(viz::TriggerKind::nan)->step == 7);
  BOOST_TEST(rec.first_event(viz::TriggerKind::exploding)->step == 3);
}

BOOST_AUTO_TEST_CASE(ring_buffer_keeps_the_newest_steps) {
  Toy t;
  viz::GradientFlightRecorder rec(t.named(), {.capacity = 3});
  for (std::int64_t s = 1; s <= 5; ++s) {
    t.backward({double(s), 0, 0, 0, 0, 0}, {0, 0}, {0, 0, 0});
    rec.record_gradients(s * 10, static_cast<double>(s));
    rec.record_update();
  }
  BOOST_TEST(rec.size() == 3u);
  BOOST_TEST(rec.total_steps() == 5);
  BOOST_TEST(rec.at(0).step == 30);
  BOOST_TEST(rec.at(2).step == 50);
  BOOST_TEST(rec.at(0).params[0].grad_norm == 3.0);
  BOOST_TEST(rec.back().loss == 5.0);
  // The CSV holds the held steps only, oldest first.
  const std::string csv = rec.csv();
  BOOST_TEST(csv.find("\n20,") == std::string::npos);
  BOOST_TEST(csv.find("\n30,") < csv.find("\n50,"));
}

BOOST_AUTO_TEST_CASE(bad_use_is_refused) {
  Toy t;
  expect_error([] { viz::GradientFlightRecorder r({}); },
               {"GradientFlightRecorder", "no parameters"});
  expect_error([&] { viz::GradientFlightRecorder r({{"a", t.w}, {"a", t.b}}); }, {"'a'", "twice"});
  expect_error([&] { viz::GradientFlightRecorder r({{"a", Tensor()}}); }, {"'a'", "undefined"});
  expect_error(
      [&] {
        viz::GradientFlightRecorder r({{"i", make({1}, {1}, int64)}});
      },
      {"'i'", "int64"});
  expect_error([&] { viz::GradientFlightRecorder r(t.named(), {.capacity = 0}); }, {"capacity"});
  viz::GradientFlightRecorder rec(t.named());
  expect_error([&] { rec.record_update(); }, {"record_update", "no step is open"});
  expect_error([&] { rec.back(); }, {"no step recorded"});
  t.backward({1, 1, 1, 1, 1, 1}, {1, 1}, {1, 1, 1});
  rec.record_gradients(5);
  expect_error([&] { rec.record_gradients(5); }, {"step 5", "previous step 5"});
  expect_error([&] { rec.at(1); }, {"index 1", "1 steps held"});
}

// Must-show: a learning rate that blows the run up. The recorder names the first module and
// step whose gradient norm exceeds its trigger, and that step comes before the first NaN loss.
BOOST_AUTO_TEST_CASE(exploding_learning_rate_is_named_before_the_loss_turns_nan) {
  manual_seed(3);
  nn::MLP mlp({20, 32, 32, 4});
  optim::SGD opt(mlp.parameters(), optim::SGDOptions(1000.0));
  viz::GradientFlightRecorder rec(mlp.named_parameters());
  Tensor x = randn({64, 20});
  Tensor y =
      argmax(index_select(x, 1, tensor({0.0, 1.0, 2.0, 3.0}, int64)), 1);  // a learnable labelling
  std::int64_t nan_step = -1;
  for (std::int64_t step = 1; step <= 200 && nan_step < 0; ++step) {
    Tensor loss = cross_entropy(mlp(x), y);
    const double l = loss.item();
    if (!std::isfinite(l)) {
      nan_step = step;
      break;
    }
    opt.zero_grad();
    loss.backward();
    rec.record_gradients(step, l);
    opt.step();
    rec.record_update(10.0);
  }
  BOOST_REQUIRE_MESSAGE(nan_step > 0, "the run did not blow up");
  const viz::TriggerEvent* e = rec.first_event(viz::TriggerKind::exploding);
  BOOST_REQUIRE(e);
  BOOST_TEST_MESSAGE(e->message() << "; loss non-finite at step " << nan_step);
  BOOST_TEST(e->step < nan_step);
  // It is the first: no module's norm exceeded 100 x its running mean on an earlier step, and
  // on the event's step the named module's did (recomputed from the recorded norms).
  std::vector<double> mean(rec.module_names().size(), 0);
  for (std::size_t i = 0; i < rec.size(); ++i) {
    const viz::StepRecord& r = rec.at(i);
    for (std::size_t m = 0; m < mean.size(); ++m) {
      const double n = r.modules[m].grad_norm;
      const bool over = i > 0 && std::isfinite(n) && n > 100 * mean[m];
      if (r.step < e->step) BOOST_TEST(!over, "step " << r.step << " module " << m);
      if (r.step == e->step && rec.module_names()[m] == e->module) BOOST_TEST(over);
      if (std::isfinite(n)) mean[m] = i == 0 ? n : 0.9 * mean[m] + 0.1 * n;
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
