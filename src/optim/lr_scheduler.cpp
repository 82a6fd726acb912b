// The schedulers follow torch 1.13's torch/optim/lr_scheduler.py expression by expression:
// Python evaluates a * b / c as (a * b) / c in double precision, and so do these (the build
// disables FMA contraction), which is what makes the rates equal torch's bit for bit.
#include "xgrad/optim/lr_scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace xgrad::optim {

namespace {

// ---- reading a SchedulerState ------------------------------------------------------------

double take(const SchedulerState& s, SchedulerState& rest, const std::string& who,
            const std::string& key) {
  auto it = s.find(key);
  if (it == s.end()) fail(who, "::load_state_dict: the state has no '", key, "'");
  rest.erase(key);
  return it->second;
}

std::int64_t take_int(const SchedulerState& s, SchedulerState& rest, const std::string& who,
                      const std::string& key, std::int64_t min) {
  const double v = take(s, rest, who, key);
  if (!(v >= static_cast<double>(min) && v < 9.2e18 && v == std::floor(v)))
    fail(who, "::load_state_dict: '", key, "' must be an integer >= ", min, ", got ", v);
  return static_cast<std::int64_t>(v);
}

double take_number(const SchedulerState& s, SchedulerState& rest, const std::string& who,
                   const std::string& key, double min = -std::numeric_limits<double>::infinity(),
                   bool allow_infinite = false) {
  const double v = take(s, rest, who, key);
  if (!(v >= min) || (!allow_infinite && !std::isfinite(v)))
    fail(who, "::load_state_dict: invalid '", key, "' ", v);
  return v;
}

// "<prefix>.0", "<prefix>.1", ... as long as they exist.
std::vector<double> take_list(const SchedulerState& s, SchedulerState& rest,
                              const std::string& prefix) {
  std::vector<double> out;
  for (std::size_t i = 0;; ++i) {
    auto it = s.find(prefix + "." + std::to_string(i));
    if (it == s.end()) break;
    rest.erase(it->first);
    out.push_back(it->second);
  }
  return out;
}

void put_list(SchedulerState& s, const std::string& prefix, const std::vector<double>& v) {
  for (std::size_t i = 0; i < v.size(); ++i) s[prefix + "." + std::to_string(i)] = v[i];
}

void check_groups(const std::string& who, const std::string& key, std::size_t got,
                  std::size_t groups) {
  if (got != groups)
    fail(who, "::load_state_dict: the state has ", got, " '", key,
         "' entries but the optimizer has ", groups, " parameter groups");
}

void check_unknown(const std::string& who, const SchedulerState& rest) {
  if (!rest.empty()) fail(who, "::load_state_dict: unexpected key '", rest.begin()->first, "'");
}

void check_gamma(const char* who, double gamma) {
  check(std::isfinite(gamma) && gamma >= 0, who, ": invalid gamma ", gamma,
        " (must be finite and >= 0)");
}

}  // namespace

// ---- Scheduler --------------------------------------------------------------------------

Scheduler::Scheduler(Optimizer& optimizer) : optimizer_(&optimizer) {}

std::vector<double> Scheduler::group_lrs() const {
  std::vector<double> out;
  for (const auto& g : optimizer_->param_groups()) out.push_back(g.lr());
  return out;
}

// ---- LRScheduler ------------------------------------------------------------------------

LRScheduler::LRScheduler(Optimizer& optimizer, std::int64_t last_epoch, const char* name)
    : Scheduler(optimizer) {
  check(last_epoch >= -1, name, ": invalid last_epoch ", last_epoch, " (must be >= -1)");
  auto& groups = optimizer.param_groups();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    if (last_epoch == -1) {
      groups[g].options.emplace("initial_lr", groups[g].lr());  // torch's setdefault
    } else if (!groups[g].options.count("initial_lr")) {
      fail(name, ": parameter group ", g, " has no 'initial_lr', which continuing a schedule ",
           "(last_epoch ", last_epoch, ") needs");
    }
    base_lrs_.push_back(groups[g].option("initial_lr"));
  }
  last_epoch_ = last_epoch;
}

void LRScheduler::initial_step() {
  step_count_ = 0;
  step();
}

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  const std::vector<double> values = get_lr();
  auto& groups = optimizer_->param_groups();
  for (std::size_t g = 0; g < groups.size() && g < values.size(); ++g) groups[g].set_lr(values[g]);
  last_lr_ = group_lrs();
}

SchedulerState LRScheduler::state_dict() const {
  SchedulerState s;
  s["last_epoch"] = static_cast<double>(last_epoch_);
  s["_step_count"] = static_cast<double>(step_count_);
  put_list(s, "base_lrs", base_lrs_);
  put_list(s, "_last_lr", last_lr_);
  save_extra(s);
  return s;
}

void LRScheduler::load_state_dict(const SchedulerState& state) {
  const std::string who = name();
  SchedulerState rest = state;
  const std::int64_t last_epoch = take_int(state, rest, who, "last_epoch", 0);
  const std::int64_t step_count = take_int(state, rest, who, "_step_count", 1);
  const std::vector<double> base_lrs = take_list(state, rest, "base_lrs");
  const std::vector<double> last_lr = take_list(state, rest, "_last_lr");
  const std::size_t groups = optimizer_->param_groups().size();
  check_groups(who, "base_lrs", base_lrs.size(), groups);
  check_groups(who, "_last_lr", last_lr.size(), groups);
  load_extra(state, rest, false);
  check_unknown(who, rest);
  last_epoch_ = last_epoch;
  step_count_ = step_count;
  base_lrs_ = base_lrs;
  last_lr_ = last_lr;
  SchedulerState scratch = state;
  load_extra(state, scratch, true);
}

// ---- StepLR -----------------------------------------------------------------------------

StepLR::StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma, std::int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch, "StepLR"), step_size_(step_size), gamma_(gamma) {
  check(step_size >= 1, "StepLR: invalid step_size ", step_size, " (must be >= 1)");
  check_gamma("StepLR", gamma);
  initial_step();
}

std::vector<double> StepLR::get_lr() const {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return lrs;
  for (double& lr : lrs) lr = lr * gamma_;
  return lrs;
}

void StepLR::save_extra(SchedulerState& s) const {
  s["step_size"] = static_cast<double>(step_size_);
  s["gamma"] = gamma_;
}

void StepLR::load_extra(const SchedulerState& s, SchedulerState& rest, bool apply) {
  const std::int64_t step_size = take_int(s, rest, name(), "step_size", 1);
  const double gamma = take_number(s, rest, name(), "gamma", 0);
  if (apply) step_size_ = step_size, gamma_ = gamma;
}

// ---- MultiStepLR ------------------------------------------------------------------------

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<std::int64_t> milestones, double gamma,
                         std::int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch, "MultiStepLR"),
      milestones_(std::move(milestones)),
      gamma_(gamma) {
  for (std::int64_t m : milestones_)
    check(m >= 0, "MultiStepLR: invalid milestone ", m, " (must be >= 0)");
  check_gamma("MultiStepLR", gamma);
  std::sort(milestones_.begin(), milestones_.end());
  initial_step();
}

std::vector<double> MultiStepLR::get_lr() const {
  std::vector<double> lrs = group_lrs();
  const auto count = std::count(milestones_.begin(), milestones_.end(), last_epoch_);
  if (count == 0) return lrs;
  // group['lr'] * self.gamma ** self.milestones[self.last_epoch]  (Python's ** calls pow)
  const double factor = std::pow(gamma_, static_cast<double>(count));
  for (double& lr : lrs) lr = lr * factor;
  return lrs;
}

void MultiStepLR::save_extra(SchedulerState& s) const {
  for (std::size_t i = 0; i < milestones_.size(); ++i)
    s["milestones." + std::to_string(i)] = static_cast<double>(milestones_[i]);
  s["gamma"] = gamma_;
}

void MultiStepLR::load_extra(const SchedulerState& s, SchedulerState& rest, bool apply) {
  std::vector<std::int64_t> milestones;
  for (std::size_t i = 0; s.count("milestones." + std::to_string(i)); ++i)
    milestones.push_back(take_int(s, rest, name(), "milestones." + std::to_string(i), 0));
  const double gamma = take_number(s, rest, name(), "gamma", 0);
  std::sort(milestones.begin(), milestones.end());
  if (apply) milestones_ = std::move(milestones), gamma_ = gamma;
}

// ---- ExponentialLR ----------------------------------------------------------------------

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma, std::int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch, "ExponentialLR"), gamma_(gamma) {
  check_gamma("ExponentialLR", gamma);
  initial_step();
}

std::vector<double> ExponentialLR::get_lr() const {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0) return lrs;
  for (double& lr : lrs) lr = lr * gamma_;
  return lrs;
}

void ExponentialLR::save_extra(SchedulerState& s) const {
  s["gamma"] = gamma_;
}

void ExponentialLR::load_extra(const SchedulerState& s, SchedulerState& rest, bool apply) {
  const double gamma = take_number(s, rest, name(), "gamma", 0);
  if (apply) gamma_ = gamma;
}

// ---- CosineAnnealingLR ------------------------------------------------------------------

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min,
                                     std::int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch, "CosineAnnealingLR"), T_max_(T_max), eta_min_(eta_min) {
  check(T_max >= 1, "CosineAnnealingLR: invalid T_max ", T_max, " (must be >= 1)");
  check(std::isfinite(eta_min), "CosineAnnealingLR: invalid eta_min ", eta_min);
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() const {
  constexpr double pi = std::numbers::pi;  // math.pi
  std::vector<double> lrs = group_lrs();
  const double t = static_cast<double>(last_epoch_), T = static_cast<double>(T_max_);
  if (last_epoch_ == 0) return lrs;
  if (step_count_ == 1 && last_epoch_ > 0) {
    // eta_min + (base_lr - eta_min) * (1 + math.cos((last_epoch) * math.pi / T_max)) / 2
    for (std::size_t g = 0; g < lrs.size(); ++g)
      lrs[g] = eta_min_ + (base_lrs_[g] - eta_min_) * (1 + std::cos(t * pi / T)) / 2;
  } else if ((last_epoch_ - 1 - T_max_) % (2 * T_max_) == 0) {
    // group['lr'] + (base_lr - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
    for (std::size_t g = 0; g < lrs.size(); ++g)
      lrs[g] = lrs[g] + (base_lrs_[g] - eta_min_) * (1 - std::cos(pi / T)) / 2;
  } else {
    // (1 + cos(pi * last_epoch / T_max)) / (1 + cos(pi * (last_epoch - 1) / T_max))
    //   * (group['lr'] - eta_min) + eta_min
    const double ratio =
        (1 + std::cos(pi * t / T)) / (1 + std::cos(pi * static_cast<double>(last_epoch_ - 1) / T));
    for (double& lr : lrs) lr = ratio * (lr - eta_min_) + eta_min_;
  }
  return lrs;
}

void CosineAnnealingLR::save_extra(SchedulerState& s) const {
  s["T_max"] = static_cast<double>(T_max_);
  s["eta_min"] = eta_min_;
}

void CosineAnnealingLR::load_extra(const SchedulerState& s, SchedulerState& rest, bool apply) {
  const std::int64_t T_max = take_int(s, rest, name(), "T_max", 1);
  const double eta_min = take_number(s, rest, name(), "eta_min");
  if (apply) T_max_ = T_max, eta_min_ = eta_min;
}

// ---- LinearLR ---------------------------------------------------------------------------

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor,
                   std::int64_t total_iters, std::int64_t last_epoch)
    : LRScheduler(optimizer, last_epoch, "LinearLR"),
      start_factor_(start_factor),
      end_factor_(end_factor),
      total_iters_(total_iters) {
  check(start_factor > 0 && start_factor <= 1, "LinearLR: invalid start_factor ", start_factor,
        " (must be in (0, 1])");
  check(end_factor >= 0 && end_factor <= 1, "LinearLR: invalid end_factor ", end_factor,
        " (must be in [0, 1])");
  check(total_iters >= 1, "LinearLR: invalid total_iters ", total_iters, " (must be >= 1)");
  initial_step();
}

std::vector<double> LinearLR::get_lr() const {
  std::vector<double> lrs = group_lrs();
  if (last_epoch_ == 0) {
    for (double& lr : lrs) lr = lr * start_factor_;
    return lrs;
  }
  if (last_epoch_ > total_iters_) return lrs;
  // group['lr'] * (1. + (end_factor - start_factor) /
  //   (total_iters * start_factor + (last_epoch - 1) * (end_factor - start_factor)))
  const double factor =
      1. + (end_factor_ - start_factor_) /
               (static_cast<double>(total_iters_) * start_factor_ +
                static_cast<double>(last_epoch_ - 1) * (end_factor_ - start_factor_));
  for (double& lr : lrs) lr = lr * factor;
  return lrs;
}

void LinearLR::save_extra(SchedulerState& s) const {
  s["start_factor"] = start_factor_;
  s["end_factor"] = end_factor_;
  s["total_iters"] = static_cast<double>(total_iters_);
}

void LinearLR::load_extra(const SchedulerState& s, SchedulerState& rest, bool apply) {
  const double start = take_number(s, rest, name(), "start_factor", 0);
  const double end = take_number(s, rest, name(), "end_factor", 0);
  const std::int64_t total = take_int(s, rest, name(), "total_iters", 1);
  if (start <= 0 || start > 1 || end > 1)
    fail(name(), "::load_state_dict: invalid start_factor ", start, " or end_factor ", end);
  if (apply) start_factor_ = start, end_factor_ = end, total_iters_ = total;
}

// ---- ReduceLROnPlateau ------------------------------------------------------------------

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions o)
    : Scheduler(optimizer),
      factor_(o.factor),
      threshold_(o.threshold),
      eps_(o.eps),
      patience_(o.patience),
      cooldown_(o.cooldown) {
  const char* who = "ReduceLROnPlateau";
  check(o.mode == "min" || o.mode == "max", who, ": mode '", o.mode,
        "' is unknown (choose min or max)");
  check(o.threshold_mode == "rel" || o.threshold_mode == "abs", who, ": threshold mode '",
        o.threshold_mode, "' is unknown (choose rel or abs)");
  check(o.factor >= 0 && o.factor < 1, who, ": invalid factor ", o.factor, " (must be in [0, 1))");
  check(o.patience >= 0, who, ": invalid patience ", o.patience, " (must be >= 0)");
  check(o.cooldown >= 0, who, ": invalid cooldown ", o.cooldown, " (must be >= 0)");
  check(std::isfinite(o.threshold) && o.threshold >= 0, who, ": invalid threshold ", o.threshold,
        " (must be >= 0)");
  check(std::isfinite(o.eps) && o.eps >= 0, who, ": invalid eps ", o.eps, " (must be >= 0)");
  const std::size_t groups = optimizer.param_groups().size();
  if (o.min_lr.size() == 1) {
    min_lrs_.assign(groups, o.min_lr[0]);
  } else if (o.min_lr.size() == groups) {
    min_lrs_ = o.min_lr;
  } else {
    fail(who, ": expected 1 or ", groups, " min_lr values (one per parameter group), got ",
         o.min_lr.size());
  }
  for (double m : min_lrs_)
    check(std::isfinite(m) && m >= 0, who, ": invalid min_lr ", m, " (must be >= 0)");
  mode_max_ = o.mode == "max";
  threshold_abs_ = o.threshold_mode == "abs";
  best_ = mode_max_ ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  last_epoch_ = 0;
  last_lr_ = group_lrs();
}

bool ReduceLROnPlateau::is_better(double a, double best) const {
  if (!mode_max_ && !threshold_abs_) {
    const double rel_epsilon = 1. - threshold_;
    return a < best * rel_epsilon;
  }
  if (!mode_max_) return a < best - threshold_;
  if (!threshold_abs_) {
    const double rel_epsilon = threshold_ + 1.;
    return a > best * rel_epsilon;
  }
  return a > best + threshold_;
}

void ReduceLROnPlateau::reduce_lr() {
  auto& groups = optimizer_->param_groups();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const double old_lr = groups[g].lr();
    const double scaled = old_lr * factor_;
    const double new_lr = min_lrs_[g] > scaled ? min_lrs_[g] : scaled;  // Python's max()
    if (old_lr - new_lr > eps_) groups[g].set_lr(new_lr);
  }
}

void ReduceLROnPlateau::step(double metric) {
  const double current = metric;
  last_epoch_ += 1;
  if (is_better(current, best_)) {
    best_ = current;
    num_bad_epochs_ = 0;
  } else {
    num_bad_epochs_ += 1;
  }
  if (in_cooldown()) {
    cooldown_counter_ -= 1;
    num_bad_epochs_ = 0;  // ignore any bad epochs in cooldown
  }
  if (num_bad_epochs_ > patience_) {
    reduce_lr();
    cooldown_counter_ = cooldown_;
    num_bad_epochs_ = 0;
  }
  last_lr_ = group_lrs();
}

SchedulerState ReduceLROnPlateau::state_dict() const {
  SchedulerState s;
  s["mode"] = mode_max_ ? 1 : 0;
  s["threshold_mode"] = threshold_abs_ ? 1 : 0;
  s["factor"] = factor_;
  s["patience"] = static_cast<double>(patience_);
  s["threshold"] = threshold_;
  s["cooldown"] = static_cast<double>(cooldown_);
  s["cooldown_counter"] = static_cast<double>(cooldown_counter_);
  s["eps"] = eps_;
  s["last_epoch"] = static_cast<double>(last_epoch_);
  s["best"] = best_;
  s["num_bad_epochs"] = static_cast<double>(num_bad_epochs_);
  put_list(s, "min_lrs", min_lrs_);
  put_list(s, "_last_lr", last_lr_);
  return s;
}

void ReduceLROnPlateau::load_state_dict(const SchedulerState& state) {
  const std::string who = name();
  SchedulerState rest = state;
  const std::int64_t mode = take_int(state, rest, who, "mode", 0);
  const std::int64_t threshold_mode = take_int(state, rest, who, "threshold_mode", 0);
  if (mode > 1 || threshold_mode > 1)
    fail(who, "::load_state_dict: 'mode' and 'threshold_mode' must be 0 or 1");
  const double factor = take_number(state, rest, who, "factor", 0);
  if (factor >= 1) fail(who, "::load_state_dict: invalid 'factor' ", factor);
  const std::int64_t patience = take_int(state, rest, who, "patience", 0);
  const double threshold = take_number(state, rest, who, "threshold", 0);
  const std::int64_t cooldown = take_int(state, rest, who, "cooldown", 0);
  const std::int64_t cooldown_counter = take_int(state, rest, who, "cooldown_counter", 0);
  const double eps = take_number(state, rest, who, "eps", 0);
  const std::int64_t last_epoch = take_int(state, rest, who, "last_epoch", 0);
  // best is ±inf before the first step, and NaN never replaces it.
  const double best =
      take_number(state, rest, who, "best", -std::numeric_limits<double>::infinity(), true);
  const std::int64_t bad = take_int(state, rest, who, "num_bad_epochs", 0);
  const std::vector<double> min_lrs = take_list(state, rest, "min_lrs");
  const std::vector<double> last_lr = take_list(state, rest, "_last_lr");
  const std::size_t groups = optimizer_->param_groups().size();
  check_groups(who, "min_lrs", min_lrs.size(), groups);
  check_groups(who, "_last_lr", last_lr.size(), groups);
  check_unknown(who, rest);
  mode_max_ = mode == 1;
  threshold_abs_ = threshold_mode == 1;
  factor_ = factor;
  patience_ = patience;
  threshold_ = threshold;
  cooldown_ = cooldown;
  cooldown_counter_ = cooldown_counter;
  eps_ = eps;
  last_epoch_ = last_epoch;
  best_ = best;
  num_bad_epochs_ = bad;
  min_lrs_ = min_lrs;
  last_lr_ = last_lr;
}

}  // namespace xgrad::optim
