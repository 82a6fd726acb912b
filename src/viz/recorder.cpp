#include "xgrad/viz/recorder.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>
#include <type_traits>
#include <unordered_map>

#include "xgrad/error.hpp"
#include "xgrad/io/atomic_file.hpp"

namespace xgrad::viz {

namespace {

// Sum of squares of p[0..n) in double. Float data is summed in sixteen float lanes (which the
// compiler vectorises) and then in double; a float sum that overflows is redone in double.
template <class T>
double sum_squares(const T* p, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    float acc[16] = {};
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      for (int k = 0; k < 16; ++k) acc[k] += p[i + k] * p[i + k];
    double s = 0;
    for (float a : acc) s += static_cast<double>(a);
    for (; i < n; ++i) s += static_cast<double>(p[i]) * static_cast<double>(p[i]);
    if (std::isfinite(s) || std::isnan(s)) return s;
  }
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) {
      const double v = static_cast<double>(p[i + k]);
      acc[k] += v * v;
    }
  for (; i < n; ++i) {
    const double v = static_cast<double>(p[i]);
    acc[0] += v * v;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// The gradient's sum of squares and, for a tensor of two or more dimensions, its rows (first
// axis) whose entries are all zero. A row holding a NaN has a NaN sum and is not dead.
void gradient_health(const Tensor& param, const Tensor& grad, double& sq, GradientHealth& h) {
  const std::int64_t rows = param.dim() >= 2 ? param.size(0) : 0;
  h.units = rows;
  h.dead_units = 0;
  sq = 0;
  if (!grad.defined()) {  // no gradient reached it: every unit is dead
    h.dead_units = rows;
    return;
  }
  const Tensor g = grad.contiguous();
  const std::int64_t n = g.numel();
  dispatch_floating(g.dtype(), "GradientFlightRecorder", [&]<class T>() {
    const T* p = g.data_ptr<T>();
    if (rows == 0) {
      sq = sum_squares(p, n);
      return 0;
    }
    const std::int64_t len = n / rows;
    for (std::int64_t r = 0; r < rows; ++r) {
      const double s = sum_squares(p + r * len, len);
      h.dead_units += s == 0;
      sq += s;
    }
    return 0;
  });
}

// Shortest text that reads back as the same double; "nan", "inf", "-inf".
std::string num(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string g3(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

std::string_view to_string(TriggerKind kind) {
  switch (kind) {
    case TriggerKind::exploding:
      return "exploding";
    case TriggerKind::vanishing:
      return "vanishing";
    case TriggerKind::dead:
      return "dead";
    case TriggerKind::nan:
      return "nan";
  }
  return "?";
}

std::string TriggerEvent::message() const {
  std::string s = "step " + std::to_string(step) + ": module " + module + ": ";
  switch (kind) {
    case TriggerKind::exploding:
      return s + "gradient norm " + g3(value) + " exceeds its trigger " + g3(threshold) +
             " (exploding)";
    case TriggerKind::vanishing:
      return s + "gradient norm " + g3(value) + " is below " + g3(threshold) + " (vanishing)";
    case TriggerKind::dead:
      return s + g3(100 * value) + "% of its units got no gradient (trigger " +
             g3(100 * threshold) + "%: dead layer)";
    case TriggerKind::nan:
      return s + "the gradient holds NaN or Inf (norm " + g3(value) + ")";
  }
  return s;
}

GradientFlightRecorder::GradientFlightRecorder(std::vector<std::pair<std::string, Tensor>> params,
                                               RecorderOptions options)
    : options_(options) {
  check(!params.empty(), "GradientFlightRecorder: no parameters to record");
  check(options_.capacity >= 1, "GradientFlightRecorder: capacity must be >= 1, got 0");
  check(options_.explode_factor > 1, "GradientFlightRecorder: explode_factor must be > 1, got ",
        options_.explode_factor);
  std::set<std::string> seen;
  std::unordered_map<std::string, std::size_t> module_index;
  for (auto& [name, t] : params) {
    check(t.defined(), "GradientFlightRecorder: parameter '", name, "' is undefined");
    check(is_floating(t.dtype()), "GradientFlightRecorder: parameter '", name, "' is ",
          dtype_name(t.dtype()), ", not float32 or float64");
    check(t.is_contiguous(), "GradientFlightRecorder: parameter '", name, "' ",
          format_shape(t.shape()), " is not contiguous");
    check(seen.insert(name).second, "GradientFlightRecorder: parameter name '", name,
          "' appears twice");
    const auto dot = name.rfind('.');
    const std::string module = dot == std::string::npos ? "(root)" : name.substr(0, dot);
    auto [it, added] = module_index.emplace(module, module_names_.size());
    if (added) module_names_.push_back(module);
    Param p;
    p.tensor = t;
    p.module = it->second;
    const std::int64_t n = t.numel();
    std::int64_t m =
        options_.update_sample == 0
            ? n
            : std::min<std::int64_t>(n, static_cast<std::int64_t>(options_.update_sample));
    // Runs of 64 consecutive entries spread evenly over [0, n) (whole cache lines, not one
    // line per entry); the whole tensor when m == n.
    if (m == n) {
      p.runs = {0};
      p.run = n;
    } else {
      p.run = std::min<std::int64_t>(64, m);
      const std::int64_t runs = m / p.run;
      for (std::int64_t r = 0; r < runs; ++r)
        p.runs.push_back(runs == 1 ? 0 : (r * (n - p.run)) / (runs - 1));
      m = runs * p.run;
    }
    p.before.resize(static_cast<std::size_t>(m));
    p.scale = m > 0 ? static_cast<double>(n) / static_cast<double>(m) : 1.0;
    params_.push_back(std::move(p));
    param_names_.push_back(name);
  }
  triggers_.resize(module_names_.size());
  // Every slot of the ring is allocated now, before training allocates anything: a small
  // allocation per step that lives on would pin the top of the heap above each step's freed
  // tensors, and the heap would grow by a step's worth of memory every step.
  ring_.resize(options_.capacity);
  for (StepRecord& r : ring_) {
    r.params.resize(params_.size());
    r.modules.resize(module_names_.size());
  }
  sums_.resize(module_names_.size());
  weight_sums_.resize(module_names_.size());
}

void GradientFlightRecorder::fire(TriggerKind kind, std::size_t module, double value,
                                  double threshold, std::vector<TriggerEvent>& fired) {
  bool& active = triggers_[module].active[static_cast<int>(kind)];
  if (active) return;
  active = true;
  TriggerEvent e{kind, back().step, module_names_[module], value, threshold};
  ++total_events_;
  if (events_.size() < options_.max_events) events_.push_back(e);
  fired.push_back(std::move(e));
}

std::vector<TriggerEvent> GradientFlightRecorder::record_gradients(std::int64_t step, double loss) {
  check(total_ == 0 || step > back().step, "GradientFlightRecorder::record_gradients: step ", step,
        " is not after the previous step ", total_ == 0 ? 0 : back().step);
  // The slot of the new step: a fresh one until the ring is full, then the oldest.
  StepRecord* rec;
  if (count_ < ring_.size()) {
    rec = &ring_[(head_ + count_) % ring_.size()];
    ++count_;
  } else {
    rec = &ring_[head_];
    head_ = (head_ + 1) % ring_.size();
  }
  ++total_;
  rec->step = step;
  rec->loss = loss;
  rec->lr = std::numeric_limits<double>::quiet_NaN();
  std::fill(rec->params.begin(), rec->params.end(), GradientHealth{});
  std::fill(rec->modules.begin(), rec->modules.end(), GradientHealth{});
  std::vector<double>& module_sq = sums_;
  std::fill(module_sq.begin(), module_sq.end(), 0.0);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Param& p = params_[i];
    double sq = 0;
    GradientHealth& h = rec->params[i];
    gradient_health(p.tensor, p.tensor.grad(), sq, h);
    h.grad_norm = std::sqrt(sq);
    module_sq[p.module] += sq;
    GradientHealth& m = rec->modules[p.module];
    m.units += h.units;
    m.dead_units += h.dead_units;
    dispatch_floating(p.tensor.dtype(), "GradientFlightRecorder", [&]<class T>() {
      const T* w = p.tensor.data_ptr<T>();
      double* out = p.before.data();
      for (std::int64_t start : p.runs)
        for (std::int64_t k = 0; k < p.run; ++k) *out++ = static_cast<double>(w[start + k]);
      return 0;
    });
  }
  open_ = true;
  std::vector<TriggerEvent> fired;
  for (std::size_t j = 0; j < module_names_.size(); ++j) {
    GradientHealth& m = rec->modules[j];
    m.grad_norm = std::sqrt(module_sq[j]);
    Trigger& t = triggers_[j];
    const double norm = m.grad_norm;
    auto clear = [&](TriggerKind k) { t.active[static_cast<int>(k)] = false; };
    if (!std::isfinite(norm))
      fire(TriggerKind::nan, j, norm, 0, fired);
    else
      clear(TriggerKind::nan);
    const double limit = std::min(
        options_.explode_norm, t.has_mean && t.mean > 0 ? options_.explode_factor * t.mean
                                                        : std::numeric_limits<double>::infinity());
    if (std::isfinite(norm) && norm > limit)
      fire(TriggerKind::exploding, j, norm, limit, fired);
    else
      clear(TriggerKind::exploding);
    if (norm < options_.vanish_norm)
      fire(TriggerKind::vanishing, j, norm, options_.vanish_norm, fired);
    else
      clear(TriggerKind::vanishing);
    if (m.units > 0 && m.dead_share() >= options_.dead_share)
      fire(TriggerKind::dead, j, m.dead_share(), options_.dead_share, fired);
    else
      clear(TriggerKind::dead);
    if (std::isfinite(norm)) {
      t.mean = t.has_mean ? 0.9 * t.mean + 0.1 * norm : norm;
      t.has_mean = true;
    }
  }
  return fired;
}

void GradientFlightRecorder::record_update(double lr) {
  check(open_,
        "GradientFlightRecorder::record_update: no step is open (call record_gradients after "
        "backward and before the optimizer step, then record_update)");
  open_ = false;
  StepRecord& rec = const_cast<StepRecord&>(back());
  rec.lr = lr;
  std::vector<double>&dsq = sums_, &wsq = weight_sums_;
  std::fill(dsq.begin(), dsq.end(), 0.0);
  std::fill(wsq.begin(), wsq.end(), 0.0);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Param& p = params_[i];
    double d = 0, w0 = 0;
    dispatch_floating(p.tensor.dtype(), "GradientFlightRecorder", [&]<class T>() {
      const T* w = p.tensor.data_ptr<T>();
      const double* before = p.before.data();
      for (std::int64_t start : p.runs)
        for (std::int64_t k = 0; k < p.run; ++k) {
          const double b = *before++, delta = static_cast<double>(w[start + k]) - b;
          d += delta * delta;
          w0 += b * b;
        }
      return 0;
    });
    rec.params[i].update_ratio =
        w0 > 0 ? std::sqrt(d / w0) : std::numeric_limits<double>::quiet_NaN();
    dsq[p.module] += d * p.scale;  // estimates of the module's sums over all entries
    wsq[p.module] += w0 * p.scale;
  }
  for (std::size_t j = 0; j < module_names_.size(); ++j)
    rec.modules[j].update_ratio =
        wsq[j] > 0 ? std::sqrt(dsq[j] / wsq[j]) : std::numeric_limits<double>::quiet_NaN();
}

const StepRecord& GradientFlightRecorder::at(std::size_t i) const {
  check(i < count_, "GradientFlightRecorder::at: index ", i, " out of range (", count_,
        " steps held)");
  return ring_[(head_ + i) % ring_.size()];
}

const StepRecord& GradientFlightRecorder::back() const {
  check(count_ > 0, "GradientFlightRecorder: no step recorded yet");
  return at(count_ - 1);
}

const TriggerEvent* GradientFlightRecorder::first_event(TriggerKind kind) const {
  for (const auto& e : events_)
    if (e.kind == kind) return &e;
  return nullptr;
}

std::string GradientFlightRecorder::csv() const {
  std::string out = "step,loss,lr,kind,name,grad_norm,update_ratio,dead_units,units\n";
  for (std::size_t i = 0; i < count_; ++i) {
    const StepRecord& r = at(i);
    const std::string head = std::to_string(r.step) + "," + num(r.loss) + "," + num(r.lr) + ",";
    auto row = [&](const char* kind, const std::string& name, const GradientHealth& h) {
      out += head + kind + "," + name + "," + num(h.grad_norm) + "," + num(h.update_ratio) + "," +
             std::to_string(h.dead_units) + "," + std::to_string(h.units) + "\n";
    };
    for (std::size_t j = 0; j < r.modules.size(); ++j)
      row("module", module_names_[j], r.modules[j]);
    for (std::size_t j = 0; j < r.params.size(); ++j) row("param", param_names_[j], r.params[j]);
  }
  return out;
}

void GradientFlightRecorder::write_csv(const std::string& path) const {
  io::write_file_atomically(path, csv());
}

}  // namespace xgrad::viz
