// Training plots: the loss, the learning rate and the per-module gradient norms and update
// ratios of a GradientFlightRecorder, as line plots.
#include "xgrad/viz/training_plots.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <initializer_list>

#include "xgrad/error.hpp"

namespace xgrad::viz {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_steps(const GradientFlightRecorder& rec, const char* what) {
  check(rec.size() > 0, what, ": the recorder holds no step");
}

LinePlot frame(const TrainingPlotOptions& opts, const std::string& title, Axis y) {
  LinePlot p;
  p.title = opts.title + title;
  p.x = {"step", false};
  p.y = std::move(y);
  p.width = opts.width;
  p.height = opts.height;
  return p;
}

// True when some point of the plot can be drawn (finite, and > 0 on a log axis).
bool drawable(const LinePlot& p) {
  for (const Series& s : p.series)
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!p.y.log || s.y[i] > 0)) return true;
  return false;
}

// A series over the recorder's steps of value(step record); values <= 0 become NaN (lifting
// the pen) when `positive`.
template <class F>
Series over_steps(const GradientFlightRecorder& rec, std::string label, bool positive, F value) {
  Series s;
  s.label = std::move(label);
  s.x.reserve(rec.size());
  s.y.reserve(rec.size());
  for (std::size_t i = 0; i < rec.size(); ++i) {
    const StepRecord& r = rec.at(i);
    const double v = value(r);
    s.x.push_back(static_cast<double>(r.step));
    s.y.push_back(positive && !(v > 0) ? kNaN : v);
  }
  return s;
}

// One line per module of `field` (grad_norm or update_ratio), log axis.
LinePlot per_module(const GradientFlightRecorder& rec, const TrainingPlotOptions& opts,
                    const std::string& title, const std::string& axis,
                    double GradientHealth::*field, const char* what) {
  check_steps(rec, what);
  LinePlot p = frame(opts, title, {axis, true});
  for (std::size_t m = 0; m < rec.module_names().size(); ++m)
    p.series.push_back(over_steps(rec, rec.module_names()[m], true,
                                  [&](const StepRecord& r) { return r.modules[m].*field; }));
  check(drawable(p), what, ": no module has a value > 0 to draw on a log axis");
  return p;
}

}  // namespace

LinePlot loss_plot(const GradientFlightRecorder& rec, const TrainingPlotOptions& opts) {
  check_steps(rec, "loss_plot");
  check(opts.test_steps.size() == opts.test_loss.size(), "loss_plot: ", opts.test_steps.size(),
        " test steps but ", opts.test_loss.size(), " test losses");
  Series train = over_steps(rec, "train", false, [](const StepRecord& r) { return r.loss; });
  double lo = INFINITY, hi = -INFINITY;
  for (const std::vector<double>* values :
       std::initializer_list<const std::vector<double>*>{&train.y, &opts.test_loss})
    for (double v : *values)
      if (std::isfinite(v) && v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
  const bool log = lo <= hi && hi > 100 * lo;  // a loss of 0 is left out on a log axis
  LinePlot p = frame(opts, "loss", {"cross-entropy loss", log});
  const std::size_t n = train.y.size();
  std::vector<Series> lines{train};
  if (n > 100) {  // the trend under the noise: mean of the last k finite losses
    const std::size_t k = n / 50;
    Series mean;
    mean.label = "train, mean of last " + std::to_string(k);
    double sum = 0;
    std::size_t count = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (std::isfinite(train.y[i])) sum += train.y[i], ++count;
      if (i >= k && std::isfinite(train.y[i - k])) sum -= train.y[i - k], --count;
      mean.x.push_back(train.x[i]);
      mean.y.push_back(i + 1 >= k && count > 0 ? sum / static_cast<double>(count) : kNaN);
    }
    lines.push_back(std::move(mean));
  }
  if (!opts.test_steps.empty()) lines.push_back({"test", opts.test_steps, opts.test_loss});
  for (Series& s : lines) {
    if (log)
      for (double& v : s.y)
        if (!(v > 0)) v = kNaN;
    p.series.push_back(std::move(s));
  }
  return p;
}

LinePlot lr_plot(const GradientFlightRecorder& rec, const TrainingPlotOptions& opts) {
  check_steps(rec, "lr_plot");
  LinePlot p = frame(opts, "learning rate", {"learning rate", false});
  p.series.push_back(over_steps(rec, "lr", false, [](const StepRecord& r) { return r.lr; }));
  return p;
}

LinePlot grad_norm_plot(const GradientFlightRecorder& rec, const TrainingPlotOptions& opts) {
  return per_module(rec, opts, "gradient norm per module", "‖gradient‖ (log scale)",
                    &GradientHealth::grad_norm, "grad_norm_plot");
}

LinePlot update_ratio_plot(const GradientFlightRecorder& rec, const TrainingPlotOptions& opts) {
  return per_module(rec, opts, "update-to-weight ratio per module", "‖Δw‖ / ‖w‖ (log scale)",
                    &GradientHealth::update_ratio, "update_ratio_plot");
}

std::vector<std::string> write_training_plots(const std::string& dir,
                                              const GradientFlightRecorder& rec,
                                              const TrainingPlotOptions& opts) {
  check_steps(rec, "write_training_plots");
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directory(dir, ec);
  check(fs::is_directory(dir), "write_training_plots: cannot create the folder '", dir, "'",
        ec ? " (" + ec.message() + ")" : std::string());
  std::vector<std::string> written;
  auto put = [&](const char* name, const LinePlot& p) {
    if (!drawable(p)) return;
    const std::string path = (fs::path(dir) / name).string();
    write_line_plot(path, p);
    written.push_back(path);
  };
  put("loss.svg", loss_plot(rec, opts));
  put("lr.svg", lr_plot(rec, opts));
  // The norm plots throw when there is nothing to draw: leave them out then.
  const auto positive = [&](double GradientHealth::*field) {
    for (std::size_t i = 0; i < rec.size(); ++i)
      for (const GradientHealth& h : rec.at(i).modules)
        if (std::isfinite(h.*field) && h.*field > 0) return true;
    return false;
  };
  if (positive(&GradientHealth::grad_norm)) put("grad_norms.svg", grad_norm_plot(rec, opts));
  if (positive(&GradientHealth::update_ratio))
    put("update_ratios.svg", update_ratio_plot(rec, opts));
  return written;
}

}  // namespace xgrad::viz
