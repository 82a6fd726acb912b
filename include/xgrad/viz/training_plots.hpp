// Pictures of a training run from a GradientFlightRecorder: the loss curve (train and test),
// the learning rate, and each module's gradient norm and update-to-weight ratio over the steps
// (log scale), as SVG line plots (viz::line_plot_svg).
#pragma once

#include <string>
#include <vector>

#include "xgrad/viz/plot.hpp"
#include "xgrad/viz/recorder.hpp"

namespace xgrad::viz {

/// What the training plots show besides the recorder's steps.
struct TrainingPlotOptions {
  /// Prefix of every title ("batch size 64: "); "" for none.
  std::string title;
  /// Test-set losses measured during the run: at test_steps[i], test_loss[i] (same lengths).
  std::vector<double> test_steps, test_loss;
  /// Size of each picture in pixels, legend included.
  double width = 760, height = 440;
};

/// The loss per step ("train") and, over more than 100 steps, its running mean over the last
/// steps/50 of them ("train, mean of last k"), and the test losses ("test"). The y axis is
/// logarithmic when the finite losses > 0 span more than a factor of 100 (a run that blows
/// up, or single samples' losses), with losses <= 0 left out; else linear. Throws xgrad::Error when
/// the recorder holds no step or test_steps and test_loss differ in length.
LinePlot loss_plot(const GradientFlightRecorder& rec, const TrainingPlotOptions& opts = {});

/// The learning rate given to record_update at each step (linear axis). Throws xgrad::Error
/// when the recorder holds no step.
LinePlot lr_plot(const GradientFlightRecorder& rec, const TrainingPlotOptions& opts = {});

/// One line per module: its gradient norm at each step, on a log axis (a zero norm lifts the
/// pen). Throws xgrad::Error when the recorder holds no step or no norm is > 0 and finite.
LinePlot grad_norm_plot(const GradientFlightRecorder& rec, const TrainingPlotOptions& opts = {});

/// One line per module: its update-to-weight ratio at each step, on a log axis. Throws
/// xgrad::Error when the recorder holds no step or no ratio is > 0 and finite.
LinePlot update_ratio_plot(const GradientFlightRecorder& rec, const TrainingPlotOptions& opts = {});

/// Writes loss.svg, lr.svg, grad_norms.svg and update_ratios.svg into the folder `dir`
/// (created if missing; its parent must exist) and returns their paths. A picture with nothing
/// to draw (a run whose norms are all 0) is left out. Throws xgrad::Error as the plots do,
/// and when `dir` cannot be created or written (naming it).
std::vector<std::string> write_training_plots(const std::string& dir,
                                              const GradientFlightRecorder& rec,
                                              const TrainingPlotOptions& opts = {});

}  // namespace xgrad::viz
