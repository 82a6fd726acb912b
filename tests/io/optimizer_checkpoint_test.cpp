// An optimizer checkpoint taken mid-trajectory continues the run bit for bit.
//
// Each case runs 200 float64 steps on the Rosenbrock function f(x, y) = (1 − x)² + 100(y − x²)²
// from (−1.5, 2), with the closed-form gradient
//   gx = −2(1 − x) − 400x(y − x²),   gy = 200(y − x²).
// A second run saves parameter and optimizer state to a safetensors checkpoint at step 100,
// builds a NEW parameter tensor and a NEW optimizer, restores both from the file and takes the
// remaining 100 steps. Parameters and every state tensor and scalar must equal those of the
// uninterrupted run exactly (memcmp, not a tolerance).
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <memory>

#include "test_util.hpp"
#include "xgrad/io/checkpoint.hpp"
#include "xgrad/io/safetensors.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/adamw.hpp"
#include "xgrad/optim/lr_scheduler.hpp"
#include "xgrad/optim/rmsprop.hpp"
#include "xgrad/optim/sgd.hpp"

using namespace xgrad;
namespace fs = std::filesystem;
namespace optim = xgrad::optim;

namespace {

constexpr int kSteps = 200, kSaveAt = 100;

fs::path temp(const std::string& name) {
  return fs::temp_directory_path() / ("xgrad_optckpt_" + std::to_string(::getpid()) + "_" + name);
}

void set_rosenbrock_grad(const Tensor& p) {
  const double* v = p.data_ptr<double>();
  const double x = v[0], y = v[1];
  const double g[2] = {-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)};
  p.set_grad(from_data(g, {2}));
}

Tensor start() {
  const double xy[2] = {-1.5, 2.0};
  return from_data(xy, {2}, true);
}

using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(const Tensor&)>;
using MakeScheduler = std::function<std::unique_ptr<optim::LRScheduler>(optim::Optimizer&)>;

struct Run {
  Tensor p;
  std::unique_ptr<optim::Optimizer> opt;
  std::unique_ptr<optim::LRScheduler> sched;
  void steps(int n, int every) {
    for (int i = 0; i < n; ++i) {
      opt->zero_grad();
      set_rosenbrock_grad(p);
      opt->step();
      if (sched && (opt_steps_ + 1) % every == 0) sched->step();
      ++opt_steps_;
    }
  }
  int opt_steps_ = 0;
};

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.contiguous().raw_data(), b.contiguous().raw_data(),
                     a.numel() * element_size(a.dtype())) == 0;
}

void check_resume_is_exact(const MakeOptimizer& make, const MakeScheduler& make_sched = nullptr,
                           int sched_every = 10) {
  // Uninterrupted.
  Run full{start(), nullptr, nullptr};
  full.opt = make(full.p);
  if (make_sched) full.sched = make_sched(*full.opt);
  full.steps(kSteps, sched_every);

  // Interrupted at step 100: checkpoint to a file, then everything new.
  const fs::path path = temp("ckpt.safetensors");
  {
    Run first{start(), nullptr, nullptr};
    first.opt = make(first.p);
    if (make_sched) first.sched = make_sched(*first.opt);
    first.steps(kSaveAt, sched_every);
    io::save_checkpoint(path, {{"xy", first.p}}, *first.opt,
                        {.scheduler = first.sched.get(), .rng = false});
  }
  Run second{zeros({2}, Dtype::float64).requires_grad_(), nullptr, nullptr};
  second.opt = make(second.p);
  if (make_sched) second.sched = make_sched(*second.opt);
  io::load_checkpoint(path, {{"xy", second.p}}, *second.opt,
                      {.scheduler = second.sched.get(), .rng = false});
  second.opt_steps_ = kSaveAt;
  second.steps(kSteps - kSaveAt, sched_every);
  fs::remove(path);

  const double* a = full.p.data_ptr<double>();
  const double* b = second.p.data_ptr<double>();
  BOOST_CHECK_MESSAGE(same_bits(full.p, second.p), std::setprecision(17)
                                                       << "resumed (" << b[0] << ", " << b[1]
                                                       << ") != uninterrupted (" << a[0] << ", "
                                                       << a[1] << ")");
  BOOST_CHECK(std::isfinite(a[0]) && std::isfinite(a[1]));
  BOOST_CHECK(a[0] != -1.5);  // the run went somewhere
  const optim::StateDict da = full.opt->state_dict(), db = second.opt->state_dict();
  BOOST_CHECK(da.scalars == db.scalars);
  BOOST_REQUIRE_EQUAL(da.tensors.size(), db.tensors.size());
  BOOST_CHECK(!da.tensors.empty());
  for (const auto& [k, t] : da.tensors)
    BOOST_CHECK_MESSAGE(db.tensors.count(k) && same_bits(t, db.tensors.at(k)), "state " << k);
  if (make_sched) BOOST_CHECK(full.sched->state_dict() == second.sched->state_dict());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(optimizer_checkpoint)

BOOST_AUTO_TEST_CASE(adam_resumes_bit_for_bit) {
  check_resume_is_exact([](const Tensor& p) {
    return std::make_unique<optim::Adam>(std::vector<Tensor>{p}, optim::AdamOptions(1e-2));
  });
}

BOOST_AUTO_TEST_CASE(adam_amsgrad_weight_decay_resumes_bit_for_bit) {
  check_resume_is_exact([](const Tensor& p) {
    return std::make_unique<optim::Adam>(std::vector<Tensor>{p},
                                         optim::AdamOptions(2e-2).amsgrad(true).weight_decay(1e-3));
  });
}

BOOST_AUTO_TEST_CASE(adamw_resumes_bit_for_bit) {
  check_resume_is_exact([](const Tensor& p) {
    return std::make_unique<optim::AdamW>(std::vector<Tensor>{p},
                                          optim::AdamWOptions(1e-2).weight_decay(0.05));
  });
}

BOOST_AUTO_TEST_CASE(rmsprop_centered_momentum_resumes_bit_for_bit) {
  check_resume_is_exact([](const Tensor& p) {
    return std::make_unique<optim::RMSprop>(
        std::vector<Tensor>{p}, optim::RMSpropOptions(1e-3).centered(true).momentum(0.9));
  });
}

BOOST_AUTO_TEST_CASE(sgd_momentum_resumes_bit_for_bit) {
  check_resume_is_exact([](const Tensor& p) {
    return std::make_unique<optim::SGD>(std::vector<Tensor>{p},
                                        optim::SGDOptions(1e-4).momentum(0.9));
  });
}

BOOST_AUTO_TEST_CASE(sgd_nesterov_with_cosine_schedule_resumes_bit_for_bit) {
  check_resume_is_exact(
      [](const Tensor& p) {
        return std::make_unique<optim::SGD>(std::vector<Tensor>{p},
                                            optim::SGDOptions(1e-4).momentum(0.9).nesterov(true));
      },
      [](optim::Optimizer& o) { return std::make_unique<optim::CosineAnnealingLR>(o, 15, 1e-6); });
}

BOOST_AUTO_TEST_CASE(adam_with_warmup_schedule_resumes_bit_for_bit) {
  check_resume_is_exact(
      [](const Tensor& p) {
        return std::make_unique<optim::Adam>(std::vector<Tensor>{p}, optim::AdamOptions(1e-2));
      },
      [](optim::Optimizer& o) { return std::make_unique<optim::LinearLR>(o, 0.1, 1.0, 150); }, 1);
}

BOOST_AUTO_TEST_CASE(checkpoint_file_holds_state_under_torch_names) {
  Tensor p = start();
  optim::Adam opt({p}, optim::AdamOptions(1e-2));
  set_rosenbrock_grad(p);
  opt.step();
  const fs::path path = temp("names.safetensors");
  io::save_checkpoint(path, {{"xy", p}}, opt, {.rng = false});
  auto [tensors, meta] = io::load_safetensors(path);
  BOOST_CHECK(tensors.count("xy"));
  BOOST_CHECK(tensors.count("optimizer.state.0.exp_avg"));
  BOOST_CHECK(tensors.count("optimizer.state.0.exp_avg_sq"));
  BOOST_CHECK_EQUAL(meta.at("optimizer.state.0.step"), "1");
  BOOST_CHECK_EQUAL(meta.at("optimizer.param_groups.0.lr"), "0.01");
  BOOST_CHECK_EQUAL(meta.at("optimizer.param_groups.0.beta2"), "0.999");
  BOOST_CHECK_EQUAL(meta.at("optimizer.type"), "Adam");
  BOOST_CHECK(!meta.count("rng.default_generator"));
  fs::remove(path);
}

BOOST_AUTO_TEST_SUITE_END()
