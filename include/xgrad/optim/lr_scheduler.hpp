// Learning-rate schedulers, as torch.optim.lr_scheduler (torch 1.13): StepLR, MultiStepLR,
// ExponentialLR, CosineAnnealingLR, LinearLR and ReduceLROnPlateau.
//
//   optim::SGD opt(model.parameters(), optim::SGDOptions(0.1).momentum(0.9));
//   optim::StepLR sched(opt, /*step_size=*/30, /*gamma=*/0.1);
//   for (int epoch = 0; epoch < 100; ++epoch) {
//     train_one_epoch(opt);   // opt.step() per batch
//     sched.step();           // once per epoch, after the optimizer's steps
//   }
//
// A scheduler writes each group's "lr" option, which the optimizer reads at its next step().
// Every scheduler except ReduceLROnPlateau computes the new rate from the group's *current*
// rate with torch's recursive ("chainable") get_lr formulas, operation for operation in
// double precision, so its rates equal torch's to the last bit, and several schedulers on one
// optimizer compose (each multiplies in its own factor), as in torch. Constructing a scheduler
// performs torch's initial step (last_epoch -1 → 0), which for LinearLR already scales the rate.
// Stepping by an explicit epoch (torch's deprecated step(epoch), closed forms) is not provided.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "xgrad/optim/optimizer.hpp"

namespace xgrad::optim {

/// A scheduler's state as state_dict() returns it: torch's state_dict keys ("last_epoch",
/// "_step_count", "gamma", ...), lists as "<key>.<i>" ("base_lrs.0", "_last_lr.1",
/// "milestones.0"), every value as a double (integers are exact).
using SchedulerState = std::map<std::string, double>;

/// What every scheduler has: the rates it last set, its epoch counter, and a state that a
/// checkpoint saves and restores.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// The class name, as torch's: "StepLR", "ReduceLROnPlateau", ...
  virtual std::string name() const = 0;
  /// The learning rate of each parameter group after the last step (torch's get_last_lr()).
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  /// The number of step() calls so far (0 right after construction, or the last_epoch given).
  std::int64_t last_epoch() const { return last_epoch_; }
  Optimizer& optimizer() const { return *optimizer_; }

  /// Hyperparameters and counters, under torch's state_dict names (see SchedulerState).
  virtual SchedulerState state_dict() const = 0;
  /// Restores what state_dict() returned (hyperparameters included, as torch does). It does not
  /// touch the optimizer's rates: restore the optimizer's own state_dict for those. Throws
  /// xgrad::Error, leaving the scheduler unchanged, for a missing or unknown key, a value out of
  /// range, or state for a different number of parameter groups.
  virtual void load_state_dict(const SchedulerState& state) = 0;

 protected:
  explicit Scheduler(Optimizer& optimizer);
  /// Rates of all groups, in order.
  std::vector<double> group_lrs() const;

  Optimizer* optimizer_;
  std::int64_t last_epoch_ = 0;
  std::vector<double> last_lr_;
};

/// Base of the epoch-driven schedulers (torch's _LRScheduler). step() does
///   last_epoch ← last_epoch + 1;  lr_g ← get_lr()_g for each group g;  last_lr ← lr
/// With last_epoch = -1 (the default) a scheduler records each group's current rate as its
/// base rate ("initial_lr", a group option, as torch's setdefault); a scheduler created to
/// continue a run (last_epoch ≥ 0) requires every group to have "initial_lr" already.
class LRScheduler : public Scheduler {
 public:
  /// One scheduling step (per epoch, or per iteration for a warm-up) — call it after the
  /// optimizer's step().
  void step();
  /// The base rates (each group's "initial_lr").
  const std::vector<double>& base_lrs() const { return base_lrs_; }

  SchedulerState state_dict() const override;
  void load_state_dict(const SchedulerState& state) override;

 protected:
  /// Checks last_epoch and sets up base_lrs; the subclass constructor calls initial_step()
  /// once its own members are set (get_lr is virtual, so the base cannot).
  LRScheduler(Optimizer& optimizer, std::int64_t last_epoch, const char* name);
  void initial_step();
  /// The new rate of each group, computed when last_epoch has just been incremented.
  virtual std::vector<double> get_lr() const = 0;
  /// Adds the subclass's hyperparameters to a state_dict().
  virtual void save_extra(SchedulerState& state) const = 0;
  /// Validates the subclass's part of `state` (erasing each key it reads from `rest`) and, when
  /// apply is true, stores it. load_state_dict calls it twice: check everything, then apply.
  virtual void load_extra(const SchedulerState& state, SchedulerState& rest, bool apply) = 0;

  std::vector<double> base_lrs_;
  std::int64_t step_count_ = 0;  // torch's _step_count: step() calls, the initial one included
};

/// StepLR(step_size, gamma = 0.1): decays the rate by gamma every step_size epochs.
///   lr_t = lr_{t−1}·γ  if t > 0 and t mod step_size = 0,  else lr_{t−1}
/// (closed form, when nothing else changes the rate: base_lr·γ^⌊t/step_size⌋). Throws
/// xgrad::Error for step_size < 1 or a negative or non-finite gamma.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1,
         std::int64_t last_epoch = -1);
  std::string name() const override { return "StepLR"; }
  std::int64_t step_size() const { return step_size_; }
  double gamma() const { return gamma_; }

 protected:
  std::vector<double> get_lr() const override;
  void save_extra(SchedulerState& state) const override;
  void load_extra(const SchedulerState& state, SchedulerState& rest, bool apply) override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

/// MultiStepLR(milestones, gamma = 0.1): decays the rate by gamma at each milestone epoch.
///   lr_t = lr_{t−1}·γ^c  where c = how many times t occurs in milestones (0: lr unchanged)
/// (closed form base_lr·γ^(number of milestones ≤ t)). Milestones may repeat and come in any
/// order, as torch's Counter. Throws xgrad::Error for a negative milestone or a negative or
/// non-finite gamma.
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<std::int64_t> milestones, double gamma = 0.1,
              std::int64_t last_epoch = -1);
  std::string name() const override { return "MultiStepLR"; }
  /// Sorted (with repeats).
  const std::vector<std::int64_t>& milestones() const { return milestones_; }
  double gamma() const { return gamma_; }

 protected:
  std::vector<double> get_lr() const override;
  void save_extra(SchedulerState& state) const override;
  void load_extra(const SchedulerState& state, SchedulerState& rest, bool apply) override;

 private:
  std::vector<std::int64_t> milestones_;
  double gamma_;
};

/// ExponentialLR(gamma): decays the rate by gamma every epoch.
///   lr_0 = lr;  lr_t = lr_{t−1}·γ   (closed form base_lr·γ^t)
/// Throws xgrad::Error for a negative or non-finite gamma.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma, std::int64_t last_epoch = -1);
  std::string name() const override { return "ExponentialLR"; }
  double gamma() const { return gamma_; }

 protected:
  std::vector<double> get_lr() const override;
  void save_extra(SchedulerState& state) const override;
  void load_extra(const SchedulerState& state, SchedulerState& rest, bool apply) override;

 private:
  double gamma_;
};

/// CosineAnnealingLR(T_max, eta_min = 0): the cosine half-period of SGDR (Loshchilov & Hutter
/// 2017) without restarts, from base_lr down to eta_min over T_max epochs and back up after.
/// torch's recursive form, with η_min = eta_min, T = T_max:
///   t = 0:                          lr_0 = lr
///   first step with last_epoch > 0: lr_t = η_min + (base_lr − η_min)·(1 + cos(t·π/T))/2
///   (t − 1 − T) mod 2T = 0:         lr_t = lr_{t−1} + (base_lr − η_min)·(1 − cos(π/T))/2
///   otherwise:  lr_t = (1 + cos(π·t/T)) / (1 + cos(π·(t−1)/T))·(lr_{t−1} − η_min) + η_min
/// which, when nothing else changes the rate, is η_min + (base_lr − η_min)·(1 + cos(π·t/T))/2.
/// Throws xgrad::Error for T_max < 1 or a non-finite eta_min.
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min = 0,
                    std::int64_t last_epoch = -1);
  std::string name() const override { return "CosineAnnealingLR"; }
  std::int64_t T_max() const { return T_max_; }
  double eta_min() const { return eta_min_; }

 protected:
  std::vector<double> get_lr() const override;
  void save_extra(SchedulerState& state) const override;
  void load_extra(const SchedulerState& state, SchedulerState& rest, bool apply) override;

 private:
  std::int64_t T_max_;
  double eta_min_;
};

/// LinearLR(start_factor = 1/3, end_factor = 1, total_iters = 5): a linear warm-up (or decay)
/// of the rate's factor from start_factor to end_factor over total_iters steps. With s, e, n
/// the three arguments, torch's recursive form:
///   t = 0:      lr_0 = lr·s
///   t > n:      lr_t = lr_{t−1}
///   otherwise:  lr_t = lr_{t−1}·(1 + (e − s) / (n·s + (t − 1)·(e − s)))
/// (closed form base_lr·(s + (e − s)·min(n, t)/n)). Throws xgrad::Error unless
/// 0 < start_factor ≤ 1, 0 ≤ end_factor ≤ 1 and total_iters ≥ 1 (torch 1.13 accepts a
/// start_factor of 0, which divides by zero at the first step).
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0,
           std::int64_t total_iters = 5, std::int64_t last_epoch = -1);
  std::string name() const override { return "LinearLR"; }
  double start_factor() const { return start_factor_; }
  double end_factor() const { return end_factor_; }
  std::int64_t total_iters() const { return total_iters_; }

 protected:
  std::vector<double> get_lr() const override;
  void save_extra(SchedulerState& state) const override;
  void load_extra(const SchedulerState& state, SchedulerState& rest, bool apply) override;

 private:
  double start_factor_, end_factor_;
  std::int64_t total_iters_;
};

/// Options of ReduceLROnPlateau, torch's names and defaults; designated initialisers work:
/// {.mode = "max", .factor = 0.5, .patience = 2}.
struct ReduceLROnPlateauOptions {
  /// "min": the metric should decrease (a loss); "max": increase (an accuracy).
  std::string mode = "min";
  /// new lr = lr · factor, 0 ≤ factor < 1.
  double factor = 0.1;
  /// Epochs without improvement tolerated before reducing.
  std::int64_t patience = 10;
  /// What counts as an improvement: see threshold_mode.
  double threshold = 1e-4;
  /// "rel": better than best·(1 ∓ threshold); "abs": better than best ∓ threshold.
  std::string threshold_mode = "rel";
  /// Epochs to wait after a reduction before counting bad epochs again.
  std::int64_t cooldown = 0;
  /// Lower bound of each group's rate: one value for all groups, or one per group.
  std::vector<double> min_lr = {0.0};
  /// Reductions smaller than eps are skipped.
  double eps = 1e-8;
};

/// ReduceLROnPlateau: reduces the rate when a metric stops improving (torch's, 1.13). Each
/// step(metric) does:
///   better = metric < best·(1 − threshold)   (mode min, rel; min abs: metric < best − threshold;
///            max rel: metric > best·(threshold + 1); max abs: metric > best + threshold)
///   better: best ← metric, bad ← 0;  else bad ← bad + 1
///   in cooldown: cooldown_counter ← cooldown_counter − 1, bad ← 0
///   bad > patience: for each group, new = max(lr·factor, min_lr_g); if lr − new > eps: lr ←
///            new;  then cooldown_counter ← cooldown, bad ← 0
/// best starts at +inf (min) or −inf (max). A NaN metric is never better (a bad epoch).
/// Unlike torch, get_last_lr() is defined before the first step (the groups' current rates).
/// In state_dict(), "mode" is 0 for min and 1 for max, "threshold_mode" 0 for rel and 1 for
/// abs. Throws xgrad::Error for a mode or threshold_mode not listed above, factor outside
/// [0, 1), negative patience, cooldown, threshold, eps or min_lr, or a min_lr list whose length
/// is neither 1 nor the number of groups.
class ReduceLROnPlateau : public Scheduler {
 public:
  explicit ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {});
  std::string name() const override { return "ReduceLROnPlateau"; }
  /// One epoch's metric (e.g. the validation loss).
  void step(double metric);

  double best() const { return best_; }
  std::int64_t num_bad_epochs() const { return num_bad_epochs_; }
  std::int64_t cooldown_counter() const { return cooldown_counter_; }
  bool in_cooldown() const { return cooldown_counter_ > 0; }
  const std::vector<double>& min_lrs() const { return min_lrs_; }

  SchedulerState state_dict() const override;
  void load_state_dict(const SchedulerState& state) override;

 private:
  bool is_better(double a, double best) const;
  void reduce_lr();

  bool mode_max_ = false, threshold_abs_ = false;
  double factor_, threshold_, eps_;
  std::int64_t patience_, cooldown_;
  std::vector<double> min_lrs_;
  double best_;
  std::int64_t num_bad_epochs_ = 0, cooldown_counter_ = 0;
};

}  // namespace xgrad::optim
