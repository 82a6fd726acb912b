// GradientFlightRecorder: how the gradients of a model behave over training, step by step —
// per parameter and per module, the gradient norm, the update-to-weight ratio and the share of
// dead units, kept in a bounded ring buffer — with triggers that name the module and the step
// where gradients explode, vanish, die or turn NaN. (viz::GradientRecorder, in gradients.hpp,
// is its one-step counterpart: every op of one backward pass.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::viz {

/// Settings of a GradientFlightRecorder: its size and the thresholds of its triggers.
struct RecorderOptions {
  /// Steps kept; once full, each new step replaces the oldest. Must be >= 1. The memory is
  /// taken at construction: capacity x (parameters + modules) x 32 bytes (2.9 MB for the
  /// MLP's 6 parameters in 3 modules).
  std::size_t capacity = 10000;
  /// Exploding: a module's gradient norm above `explode_factor` times the running mean of its
  /// earlier finite norms (an exponential moving average, weight 0.1 on the newest; from the
  /// second step on, while that mean is > 0), or above `explode_norm` (off by default).
  double explode_factor = 100;
  double explode_norm = std::numeric_limits<double>::infinity();
  /// Vanishing: a module's gradient norm below this.
  double vanish_norm = 1e-8;
  /// Dead layer: a module in which at least this share of the units got no gradient.
  double dead_share = 0.9;
  /// Entries per parameter that the update-to-weight ratio is measured on: runs of 64
  /// consecutive entries spread evenly over the parameter (every entry of smaller ones). The
  /// ratio is then an estimate (exact when every entry moves by the same fraction). 0: every
  /// entry of every parameter (a copy of the weights at each step).
  std::size_t update_sample = 1024;
  /// Trigger events kept (the first ones; later ones are counted, not stored).
  std::size_t max_events = 1000;
};

/// What a trigger saw.
enum class TriggerKind {
  exploding,  // norm far above its running mean, or above RecorderOptions::explode_norm
  vanishing,  // norm below RecorderOptions::vanish_norm
  dead,       // share of dead units >= RecorderOptions::dead_share
  nan,        // a NaN or infinite gradient entry
};

/// "exploding", "vanishing", "dead" or "nan".
std::string_view to_string(TriggerKind kind);
/// Prints to_string(kind).
inline std::ostream& operator<<(std::ostream& os, TriggerKind kind) {
  return os << to_string(kind);
}

/// One trigger firing: the module, the step (as given to record_gradients), the value that
/// crossed the threshold and the threshold. A trigger fires when its condition starts to hold
/// for a module; it fires again for that module only after a step on which it did not hold.
struct TriggerEvent {
  TriggerKind kind = TriggerKind::nan;
  std::int64_t step = 0;
  std::string module;
  double value = 0, threshold = 0;
  /// One line: "step 12: module fc1: gradient norm 3.1e+05 exceeds 100 x its running mean
  /// 41.2 (exploding)".
  std::string message() const;
};

/// The health of one parameter's or one module's gradient at one step.
struct GradientHealth {
  /// L2 norm of the gradient (of a module: over all its parameters). NaN when an entry is
  /// NaN, infinite when one is infinite; 0 when the parameter got no gradient.
  double grad_norm = 0;
  /// ‖w_after − w_before‖ / ‖w_before‖ over the step's optimizer update (over the sampled
  /// entries, see RecorderOptions::update_sample); NaN until record_update, or when
  /// ‖w_before‖ = 0.
  double update_ratio = std::numeric_limits<double>::quiet_NaN();
  /// Units: the rows (first axis) of parameters with two or more dimensions — a Linear's
  /// output features, a convolution's output channels. A unit is dead at a step when its row
  /// of the gradient is all zero: its output got no gradient from any sample of the batch (a
  /// ReLU that was off for all of them). Vectors and scalars (biases, norms) have no units.
  std::int64_t units = 0, dead_units = 0;
  /// dead_units / units (0 without units).
  double dead_share() const {
    return units > 0 ? static_cast<double>(dead_units) / static_cast<double>(units) : 0.0;
  }
};

/// One recorded step: its number, the loss and learning rate given, and the health of every
/// parameter and every module, in the order of parameter_names() and module_names().
struct StepRecord {
  std::int64_t step = 0;
  double loss = std::numeric_limits<double>::quiet_NaN();
  double lr = std::numeric_limits<double>::quiet_NaN();
  std::vector<GradientHealth> params, modules;
};

/// Records, at every training step, the gradient norm, update-to-weight ratio and dead units of
/// each parameter and each module, and fires triggers. Use it around the optimizer step:
///
///     viz::GradientFlightRecorder rec(model.named_parameters());
///     for (...) {
///       Tensor loss = ...; opt.zero_grad(); loss.backward();
///       rec.record_gradients(step, loss.item());   // reads the .grad()s, checks triggers
///       opt.step();
///       rec.record_update(opt.param_groups()[0].lr());  // the update-to-weight ratios
///     }
///     for (auto& e : rec.events()) std::cout << e.message() << "\n";
///
/// Modules are named by the parameters' names without their last component ("fc1.weight" ->
/// "fc1"; a parameter without a dot belongs to module "(root)"): a module's numbers are over
/// the parameters it holds itself, in the order they first appear. Parameters must be float32
/// or float64 and stay the same tensors (the optimizer updates them in place). Cost per step:
/// one read of every gradient, and update_sample entries per parameter copied and compared
/// (bench/recorder_bench: under 2 % of an MLP training step).
///
/// Not thread-safe; the tensors are shared, not copied.
class GradientFlightRecorder {
 public:
  /// `params`: (name, parameter) pairs, as nn::Module::named_parameters() returns them.
  /// Throws xgrad::Error when `params` is empty, a parameter is undefined or not floating
  /// point, a name repeats, or options.capacity is 0.
  explicit GradientFlightRecorder(std::vector<std::pair<std::string, Tensor>> params,
                                  RecorderOptions options = {});

  /// Reads every parameter's .grad() (after backward, before the optimizer step) into a new
  /// step record, takes the weights the update ratio compares against, and checks the
  /// exploding, vanishing, dead and NaN triggers. `step` must be greater than the previous
  /// one (throws xgrad::Error otherwise). Returns the events this step fired.
  std::vector<TriggerEvent> record_gradients(
      std::int64_t step, double loss = std::numeric_limits<double>::quiet_NaN());

  /// After the optimizer step: the update-to-weight ratios of the step record_gradients
  /// opened, and the learning rate. Throws xgrad::Error without an open step.
  void record_update(double lr = std::numeric_limits<double>::quiet_NaN());

  const std::vector<std::string>& parameter_names() const { return param_names_; }
  const std::vector<std::string>& module_names() const { return module_names_; }
  const RecorderOptions& options() const { return options_; }

  /// Steps held (at most options().capacity).
  std::size_t size() const { return count_; }
  /// The i-th held step, oldest first (i < size(); throws xgrad::Error otherwise).
  const StepRecord& at(std::size_t i) const;
  /// The newest step (throws xgrad::Error when none was recorded).
  const StepRecord& back() const;
  /// Steps recorded since construction, including those the ring buffer dropped.
  std::int64_t total_steps() const { return total_; }

  /// The trigger events so far, in order (at most options().max_events), and how many fired
  /// in all.
  const std::vector<TriggerEvent>& events() const { return events_; }
  std::int64_t total_events() const { return total_events_; }
  /// The first event of `kind`, or null.
  const TriggerEvent* first_event(TriggerKind kind) const;

  /// The held steps as CSV, one row per step and parameter or module:
  /// "step,loss,lr,kind,name,grad_norm,update_ratio,dead_units,units", kind "module" or
  /// "param"; numbers as the shortest text that reads back the same ("nan", "inf").
  std::string csv() const;
  /// Writes csv() to `path` atomically (throws xgrad::Error naming the path on failure).
  void write_csv(const std::string& path) const;

 private:
  struct Param {
    Tensor tensor;
    std::size_t module = 0;
    std::vector<std::int64_t> runs;  // starts of the runs of entries the update ratio reads
    std::int64_t run = 0;            // entries per run
    std::vector<double> before;      // their values before the step
    double scale = 1;                // numel / before.size()
  };
  struct Trigger {
    double mean = 0;  // running mean of finite norms
    bool has_mean = false;
    bool active[4] = {false, false, false, false};
  };
  void fire(TriggerKind kind, std::size_t module, double value, double threshold,
            std::vector<TriggerEvent>& fired);

  RecorderOptions options_;
  std::vector<Param> params_;
  std::vector<std::string> param_names_, module_names_;
  std::vector<Trigger> triggers_;           // per module
  std::vector<StepRecord> ring_;            // capacity slots, allocated up front
  std::vector<double> sums_, weight_sums_;  // per-module scratch of each step
  std::size_t head_ = 0, count_ = 0;        // ring_[head_] is the oldest
  std::int64_t total_ = 0;
  bool open_ = false;  // record_gradients ran, record_update not yet
  std::vector<TriggerEvent> events_;
  std::int64_t total_events_ = 0;
};

}  // namespace xgrad::viz
