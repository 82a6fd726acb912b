// The learning-rate schedulers against torch.optim.lr_scheduler, bit for bit.
//
// tests/data/scheduler_golden/lr_schedules.csv holds torch 1.13.1's rates (Debian's
// python3-torch) for each configuration below: an SGD optimizer with two parameter groups
// (lr 0.1 and 0.0375), the rates right after constructing the scheduler(s) (step 0) and after
// each of 30 steps, 17 significant digits. tools/make_scheduler_golden.py wrote it; its
// CONFIGS and kBuilders below must name the same configurations. Every rate must be equal
// (==), not close: the schedulers use torch's recursive formulas in the same operation order.
#include <cmath>
#include <fstream>
#include <functional>
#include <iomanip>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/optim/lr_scheduler.hpp"
#include "xgrad/optim/sgd.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
namespace optim = xgrad::optim;

namespace {

struct Row {
  int step;
  double metric;
  std::vector<double> lrs;
};
using Table = std::map<std::string, std::vector<Row>>;

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char ch : line) {
    if (ch == '"') {
      quoted = !quoted;
    } else if (ch == ',' && !quoted) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  out.push_back(cur);
  return out;
}

const Table& golden() {
  static const Table table = [] {
    const std::string path =
        std::string(XGRAD_TEST_DATA_DIR) + "/scheduler_golden/lr_schedules.csv";
    std::ifstream f(path);
    BOOST_REQUIRE_MESSAGE(f, "cannot open " << path);
    Table t;
    std::string line;
    bool header = false;
    while (std::getline(f, line)) {
      if (line.empty() || line[0] == '#') continue;
      if (!header) {
        header = true;  // config,step,metric,lr0,lr1
        continue;
      }
      const auto cells = split_csv(line);
      BOOST_REQUIRE_EQUAL(cells.size(), 5u);
      Row r;
      r.step = std::stoi(cells[1]);
      r.metric = cells[2].empty() ? 0.0 : std::strtod(cells[2].c_str(), nullptr);
      r.lrs = {std::strtod(cells[3].c_str(), nullptr), std::strtod(cells[4].c_str(), nullptr)};
      t[cells[0]].push_back(r);
    }
    return t;
  }();
  return table;
}

// The optimizer of the golden runs: SGD with groups of lr 0.1 and 0.0375.
struct Setup {
  Tensor p0 = zeros({1}, Dtype::float64).requires_grad_();
  Tensor p1 = zeros({1}, Dtype::float64).requires_grad_();
  optim::SGD opt{
      {optim::ParamGroup({p0}, {{"lr", 0.1}}), optim::ParamGroup({p1}, {{"lr", 0.0375}})},
      optim::SGDOptions(0.1)};
  std::vector<std::unique_ptr<optim::Scheduler>> scheds;
  void step(double metric) {
    for (auto& s : scheds) {
      if (auto* e = dynamic_cast<optim::LRScheduler*>(s.get())) e->step();
      if (auto* p = dynamic_cast<optim::ReduceLROnPlateau*>(s.get())) p->step(metric);
    }
  }
  std::vector<double> lrs() const {
    return {opt.param_groups()[0].lr(), opt.param_groups()[1].lr()};
  }
};

using Builder = std::function<void(Setup&)>;

template <class S, class... Args>
Builder one(Args... args) {
  return [=](Setup& s) { s.scheds.push_back(std::make_unique<S>(s.opt, args...)); };
}

// The C++ twins of make_scheduler_golden.py's CONFIGS.
const std::map<std::string, Builder>& builders() {
  using V = std::vector<std::int64_t>;
  static const std::map<std::string, Builder> b = {
      {"StepLR step_size=3 gamma=0.5", one<optim::StepLR>(std::int64_t{3}, 0.5)},
      {"StepLR step_size=7", one<optim::StepLR>(std::int64_t{7})},
      {"MultiStepLR milestones=5,12,12,20 gamma=0.3",
       one<optim::MultiStepLR>(V{5, 12, 12, 20}, 0.3)},
      {"MultiStepLR milestones=2,9", one<optim::MultiStepLR>(V{2, 9})},
      {"ExponentialLR gamma=0.9", one<optim::ExponentialLR>(0.9)},
      {"ExponentialLR gamma=0.77", one<optim::ExponentialLR>(0.77)},
      {"CosineAnnealingLR T_max=10", one<optim::CosineAnnealingLR>(std::int64_t{10})},
      {"CosineAnnealingLR T_max=7 eta_min=0.001",
       one<optim::CosineAnnealingLR>(std::int64_t{7}, 0.001)},
      {"CosineAnnealingLR T_max=10 eta_min=0.001 last_epoch=4",
       [](Setup& s) {
         // Continuing a schedule: initial_lr is the base rate, lr the current one.
         const double current[] = {0.08, 0.03};
         for (int g = 0; g < 2; ++g) {
           auto& group = s.opt.param_groups()[g];
           group.options["initial_lr"] = group.lr();
           group.set_lr(current[g]);
         }
         s.scheds.push_back(std::make_unique<optim::CosineAnnealingLR>(s.opt, 10, 0.001, 4));
       }},
      {"LinearLR", one<optim::LinearLR>()},
      {"LinearLR start_factor=0.25 end_factor=0.75 total_iters=10",
       one<optim::LinearLR>(0.25, 0.75, std::int64_t{10})},
      {"LinearLR start_factor=1 end_factor=0.1 total_iters=20",
       one<optim::LinearLR>(1.0, 0.1, std::int64_t{20})},
      {"chain LinearLR start_factor=0.5 total_iters=4 + ExponentialLR gamma=0.95",
       [](Setup& s) {
         s.scheds.push_back(std::make_unique<optim::LinearLR>(s.opt, 0.5, 1.0, 4));
         s.scheds.push_back(std::make_unique<optim::ExponentialLR>(s.opt, 0.95));
       }},
      {"chain ExponentialLR gamma=0.9 + StepLR step_size=4 gamma=0.5",
       [](Setup& s) {
         s.scheds.push_back(std::make_unique<optim::ExponentialLR>(s.opt, 0.9));
         s.scheds.push_back(std::make_unique<optim::StepLR>(s.opt, 4, 0.5));
       }},
      {"ReduceLROnPlateau factor=0.5 patience=2 cooldown=1 min_lr=0.01",
       one<optim::ReduceLROnPlateau>(optim::ReduceLROnPlateauOptions{
           .factor = 0.5, .patience = 2, .cooldown = 1, .min_lr = {0.01}})},
      {"ReduceLROnPlateau mode=max threshold_mode=abs threshold=0.01 patience=1 min_lr=0.001,0",
       one<optim::ReduceLROnPlateau>(optim::ReduceLROnPlateauOptions{.mode = "max",
                                                                     .patience = 1,
                                                                     .threshold = 0.01,
                                                                     .threshold_mode = "abs",
                                                                     .min_lr = {0.001, 0.0}})},
      {"ReduceLROnPlateau", one<optim::ReduceLROnPlateau>(optim::ReduceLROnPlateauOptions{})},
  };
  return b;
}

// Runs every golden configuration whose name starts with `prefix` and compares each rate with
// ==. Returns how many configurations it checked.
int check_golden(const std::string& prefix) {
  int checked = 0;
  for (const auto& [name, rows] : golden()) {
    if (name.rfind(prefix, 0) != 0) continue;
    auto b = builders().find(name);
    BOOST_REQUIRE_MESSAGE(b != builders().end(),
                          "no C++ builder for golden config '" << name << "'");
    Setup s;
    b->second(s);
    for (const Row& r : rows) {
      if (r.step > 0) s.step(r.metric);
      const std::vector<double> got = s.lrs();
      for (std::size_t g = 0; g < 2; ++g)
        BOOST_CHECK_MESSAGE(got[g] == r.lrs[g], name << ", step " << r.step << ", group " << g
                                                     << ": xgrad " << std::setprecision(17)
                                                     << got[g] << ", torch " << r.lrs[g]);
      BOOST_CHECK(s.scheds.back()->get_last_lr() == got);
    }
    BOOST_CHECK_EQUAL(rows.size(), 31u);
    ++checked;
  }
  return checked;
}

// Steps a scheduler 7 times, saves scheduler and optimizer state, restores both into fresh
// objects and checks 10 more steps follow the uninterrupted run exactly.
void check_round_trip(const Builder& build) {
  Setup a;
  build(a);
  for (int t = 1; t <= 7; ++t) a.step(1.0 / t);
  const optim::StateDict od = a.opt.state_dict();
  const optim::SchedulerState sd = a.scheds[0]->state_dict();

  Setup b;
  build(b);
  b.opt.load_state_dict(od);
  b.scheds[0]->load_state_dict(sd);
  BOOST_CHECK(b.scheds[0]->state_dict() == sd);
  BOOST_CHECK(b.scheds[0]->get_last_lr() == a.scheds[0]->get_last_lr());
  BOOST_CHECK_EQUAL(b.scheds[0]->last_epoch(), a.scheds[0]->last_epoch());
  for (int t = 8; t <= 17; ++t) {
    a.step(t % 3 == 0 ? 0.5 : 1.0);
    b.step(t % 3 == 0 ? 0.5 : 1.0);
    BOOST_CHECK_MESSAGE(a.lrs() == b.lrs(), a.scheds[0]->name() << ": step " << t << " differs");
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lr_scheduler)

BOOST_AUTO_TEST_CASE(every_golden_config_has_a_builder_and_back) {
  BOOST_CHECK_EQUAL(golden().size(), builders().size());
  for (const auto& [name, rows] : golden())
    BOOST_CHECK_MESSAGE(builders().count(name), "golden config '" << name << "' has no builder");
  for (const auto& [name, b] : builders())
    BOOST_CHECK_MESSAGE(golden().count(name), "builder '" << name << "' has no golden rows");
}

BOOST_AUTO_TEST_CASE(step_lr_matches_torch) {
  BOOST_CHECK_EQUAL(check_golden("StepLR"), 2);
}

BOOST_AUTO_TEST_CASE(multistep_lr_matches_torch) {
  BOOST_CHECK_EQUAL(check_golden("MultiStepLR"), 2);
}

BOOST_AUTO_TEST_CASE(exponential_lr_matches_torch) {
  BOOST_CHECK_EQUAL(check_golden("ExponentialLR"), 2);
}

BOOST_AUTO_TEST_CASE(cosine_annealing_lr_matches_torch) {
  // T_max 7 and 10 over 30 steps: past T_max, through the (2k+1)·T_max branch; and a scheduler
  // created with last_epoch 4 (torch's first-step closed form).
  BOOST_CHECK_EQUAL(check_golden("CosineAnnealingLR"), 3);
}

BOOST_AUTO_TEST_CASE(linear_lr_matches_torch) {
  BOOST_CHECK_EQUAL(check_golden("LinearLR"), 3);
}

BOOST_AUTO_TEST_CASE(chained_schedulers_match_torch) {
  BOOST_CHECK_EQUAL(check_golden("chain "), 2);
}

BOOST_AUTO_TEST_CASE(reduce_lr_on_plateau_matches_torch) {
  BOOST_CHECK_EQUAL(check_golden("ReduceLROnPlateau"), 3);
}

BOOST_AUTO_TEST_CASE(construction_records_initial_lr_and_takes_the_first_step) {
  Setup s;
  optim::LinearLR sched(s.opt, 0.5, 1.0, 4);
  BOOST_CHECK_EQUAL(sched.last_epoch(), 0);
  BOOST_CHECK_EQUAL(s.opt.param_groups()[0].option("initial_lr"), 0.1);
  BOOST_CHECK_EQUAL(s.opt.param_groups()[1].option("initial_lr"), 0.0375);
  BOOST_CHECK(sched.base_lrs() == (std::vector<double>{0.1, 0.0375}));
  BOOST_CHECK_EQUAL(s.opt.param_groups()[0].lr(), 0.1 * 0.5);
  BOOST_CHECK(sched.get_last_lr() == s.lrs());
  sched.step();
  BOOST_CHECK_EQUAL(sched.last_epoch(), 1);
  // The optimizer's state_dict carries initial_lr, as torch's does.
  BOOST_CHECK(s.opt.state_dict().scalars.count("param_groups.0.initial_lr"));
}

BOOST_AUTO_TEST_CASE(state_dict_round_trip_continues_exactly) {
  for (const auto& name :
       {"StepLR step_size=3 gamma=0.5", "MultiStepLR milestones=5,12,12,20 gamma=0.3",
        "ExponentialLR gamma=0.9", "CosineAnnealingLR T_max=7 eta_min=0.001",
        "LinearLR start_factor=0.25 end_factor=0.75 total_iters=10",
        "ReduceLROnPlateau factor=0.5 patience=2 cooldown=1 min_lr=0.01"}) {
    BOOST_TEST_CONTEXT(name) {
      check_round_trip(builders().at(name));
    }
  }
}

BOOST_AUTO_TEST_CASE(state_dict_uses_torch_names) {
  Setup s;
  optim::StepLR step(s.opt, 3, 0.5);
  const auto sd = step.state_dict();
  for (const char* k : {"last_epoch", "_step_count", "base_lrs.0", "base_lrs.1", "_last_lr.0",
                        "step_size", "gamma"})
    BOOST_CHECK_MESSAGE(sd.count(k), "missing " << k);
  BOOST_CHECK_EQUAL(sd.at("_step_count"), 1.0);
  Setup p;
  optim::ReduceLROnPlateau plateau(p.opt, {.mode = "max"});
  const auto pd = plateau.state_dict();
  BOOST_CHECK_EQUAL(pd.at("mode"), 1.0);
  BOOST_CHECK_EQUAL(pd.at("best"), -std::numeric_limits<double>::infinity());
  BOOST_CHECK(plateau.get_last_lr() == p.lrs());  // defined before the first step
}

BOOST_AUTO_TEST_CASE(bad_arguments_throw_naming_the_scheduler) {
  Setup s;
  expect_error([&] { optim::StepLR(s.opt, 0); }, {"StepLR", "step_size 0"});
  expect_error([&] { optim::StepLR(s.opt, 2, -0.5); }, {"StepLR", "gamma"});
  expect_error([&] { optim::MultiStepLR(s.opt, {3, -1}); }, {"MultiStepLR", "milestone -1"});
  expect_error([&] { optim::ExponentialLR(s.opt, std::nan("")); }, {"ExponentialLR", "gamma"});
  expect_error([&] { optim::CosineAnnealingLR(s.opt, 0); }, {"CosineAnnealingLR", "T_max 0"});
  expect_error([&] { optim::LinearLR(s.opt, 0.0); }, {"LinearLR", "start_factor 0"});
  expect_error([&] { optim::LinearLR(s.opt, 0.5, 1.5); }, {"LinearLR", "end_factor 1.5"});
  expect_error([&] { optim::LinearLR(s.opt, 0.5, 1.0, 0); }, {"LinearLR", "total_iters 0"});
  expect_error([&] { optim::StepLR(s.opt, 2, 0.1, -2); }, {"StepLR", "last_epoch -2"});
  expect_error([&] { optim::ReduceLROnPlateau(s.opt, {.mode = "median"}); },
               {"ReduceLROnPlateau", "median"});
  expect_error([&] { optim::ReduceLROnPlateau(s.opt, {.threshold_mode = "pct"}); },
               {"ReduceLROnPlateau", "pct"});
  expect_error([&] { optim::ReduceLROnPlateau(s.opt, {.factor = 1.0}); },
               {"ReduceLROnPlateau", "factor 1"});
  expect_error([&] { optim::ReduceLROnPlateau(s.opt, {.patience = -1}); },
               {"ReduceLROnPlateau", "patience -1"});
  expect_error(
      [&] {
        optim::ReduceLROnPlateau(s.opt, {.min_lr = {0.1, 0.2, 0.3}});
      },
      {"ReduceLROnPlateau", "min_lr"});
  // Continuing a schedule needs initial_lr in every group.
  Setup fresh;
  expect_error([&] { optim::CosineAnnealingLR(fresh.opt, 10, 0.0, 3); },
               {"CosineAnnealingLR", "initial_lr"});
}

BOOST_AUTO_TEST_CASE(load_state_dict_rejects_bad_state_and_stays_unchanged) {
  Setup s;
  optim::StepLR sched(s.opt, 3, 0.5);
  sched.step();
  const auto before = sched.state_dict();
  auto missing = before;
  missing.erase("gamma");
  expect_error([&] { sched.load_state_dict(missing); }, {"StepLR::load_state_dict", "gamma"});
  auto unknown = before;
  unknown["T_max"] = 3;
  expect_error([&] { sched.load_state_dict(unknown); }, {"StepLR::load_state_dict", "T_max"});
  auto groups = before;
  groups.erase("base_lrs.1");
  expect_error([&] { sched.load_state_dict(groups); }, {"base_lrs", "2 parameter groups"});
  auto fractional = before;
  fractional["step_size"] = 2.5;
  expect_error([&] { sched.load_state_dict(fractional); }, {"step_size", "integer"});
  BOOST_CHECK(sched.state_dict() == before);

  optim::ReduceLROnPlateau plateau(s.opt);
  auto pd = plateau.state_dict();
  pd["mode"] = 2;
  expect_error([&] { plateau.load_state_dict(pd); }, {"ReduceLROnPlateau::load_state_dict"});
}

BOOST_AUTO_TEST_SUITE_END()
