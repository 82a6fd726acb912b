// xgrad-train's --watch FILE.csv and --plot DIR: a viz::GradientFlightRecorder over the
// model's parameters at every step, its trigger events printed as they fire, its record
// written as CSV, and the pictures of the run (loss, learning rate, per-module gradient norms
// and update ratios) drawn as SVG. --eval-every N adds test-set losses between epoch ends.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/error.hpp"
#include "xgrad/nn/module.hpp"
#include "xgrad/viz/recorder.hpp"
#include "xgrad/viz/training_plots.hpp"

namespace xgrad::train {

struct WatchConfig {
  std::string csv;       // --watch
  std::string plot_dir;  // --plot
  std::int64_t eval_every = 0;
  bool active() const { return !csv.empty() || !plot_dir.empty(); }
};

inline void add_watch_options(boost::program_options::options_description& desc, WatchConfig& w) {
  namespace po = boost::program_options;
  desc.add_options()(
      "watch", po::value(&w.csv),
      "record every step's gradient norm, update-to-weight ratio and dead units per module and "
      "parameter (viz::GradientFlightRecorder), print its exploding / vanishing / dead / NaN "
      "triggers as they fire, and write the record to this CSV file")(
      "plot", po::value(&w.plot_dir),
      "draw the run into this folder as SVG: loss.svg (train and test), lr.svg, grad_norms.svg "
      "and update_ratios.svg (per module, log scale); records like --watch")(
      "eval-every", po::value(&w.eval_every)->default_value(w.eval_every),
      "with --watch or --plot: also measure the test loss every N steps (0: at epoch ends "
      "only); the time it takes counts in the epoch's samples/s");
}

/// Refuses bad --watch / --plot / --eval-every before training starts.
inline void check_watch_config(const WatchConfig& w) {
  namespace fs = std::filesystem;
  check(w.eval_every >= 0, "invalid --eval-every ", w.eval_every, " (must be >= 0)");
  check(w.eval_every == 0 || w.active(), "--eval-every applies with --watch or --plot only");
  if (!w.csv.empty()) {
    const fs::path folder = fs::absolute(w.csv).parent_path();
    check(fs::is_directory(folder), "--watch: the folder '", folder.string(), "' of '", w.csv,
          "' does not exist");
  }
  if (!w.plot_dir.empty()) {
    const fs::path dir = fs::absolute(w.plot_dir);
    check(fs::is_directory(dir) || (!fs::exists(dir) && fs::is_directory(dir.parent_path())),
          "--plot: '", w.plot_dir, "' is not a folder and cannot be made one (its parent '",
          dir.parent_path().string(), "' must exist)");
  }
}

/// The recorder of a run; does nothing when neither --watch nor --plot is given.
class Watch {
 public:
  static constexpr std::size_t kPrinted = 10;  // trigger events printed; the rest counted

  Watch(const WatchConfig& w, const nn::Module& model, std::string title, bool tty)
      : config_(w), title_(std::move(title)), tty_(tty) {
    if (w.active()) rec_ = std::make_unique<viz::GradientFlightRecorder>(model.named_parameters());
  }

  bool active() const { return rec_ != nullptr; }

  /// After backward, before the optimizer step (and before gradient clipping).
  void after_backward(std::int64_t step, double loss) {
    if (!rec_) return;
    for (const viz::TriggerEvent& e : rec_->record_gradients(step, loss)) {
      if (printed_ < kPrinted)
        std::fprintf(stderr, "%srecorder: %s\n", tty_ ? "\n" : "", e.message().c_str());
      ++printed_;
    }
  }

  /// After the optimizer step.
  void after_step(double lr) {
    if (rec_) rec_->record_update(lr);
  }

  /// Whether to measure the test loss after `step` (--eval-every).
  bool eval_due(std::int64_t step) const {
    return rec_ && config_.eval_every > 0 && step % config_.eval_every == 0;
  }

  /// A test-set loss measured after `step` (a second one for the same step is ignored).
  void test_point(std::int64_t step, double loss) {
    if (!rec_ || (!test_steps_.empty() && test_steps_.back() == static_cast<double>(step))) return;
    test_steps_.push_back(static_cast<double>(step));
    test_loss_.push_back(loss);
  }

  /// Writes the CSV and the pictures and says where; also called when a NaN loss stops the
  /// run, so that what led to it is kept.
  void finish() {
    if (!rec_ || finished_) return;
    finished_ = true;
    if (printed_ > kPrinted)
      std::fprintf(stderr, "recorder: %lld more trigger event(s) not shown\n",
                   static_cast<long long>(printed_ - kPrinted));
    if (rec_->size() == 0) return;
    if (!config_.csv.empty()) {
      rec_->write_csv(config_.csv);
      std::printf("gradient record (%lld steps) written to %s\n",
                  static_cast<long long>(rec_->size()), config_.csv.c_str());
    }
    if (!config_.plot_dir.empty()) {
      viz::TrainingPlotOptions opts;
      opts.title = title_;
      opts.test_steps = test_steps_;
      opts.test_loss = test_loss_;
      const auto files = viz::write_training_plots(config_.plot_dir, *rec_, opts);
      std::string names;
      for (const auto& f : files)
        names += (names.empty() ? "" : ", ") + std::filesystem::path(f).filename().string();
      std::printf("plots written to %s: %s\n", config_.plot_dir.c_str(), names.c_str());
    }
    std::fflush(stdout);
  }

 private:
  WatchConfig config_;
  std::string title_;
  bool tty_;
  std::unique_ptr<viz::GradientFlightRecorder> rec_;
  std::vector<double> test_steps_, test_loss_;
  std::size_t printed_ = 0;
  bool finished_ = false;
};

}  // namespace xgrad::train
