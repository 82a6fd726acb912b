// Per-op annotations of gradient graphs (gradients.hpp): a table from op name to a function of
// the gradient the op passed back, so the DOT writer never tests op names itself.
#include <cstdio>
#include <map>
#include <mutex>
#include <string>

#include "xgrad/viz/gradients.hpp"

namespace xgrad::viz {

namespace {

std::string percent(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", 100.0 * f);
  return buf;
}

// Activations that pass no gradient outside a range: units whose gradient is zero for the
// whole batch are dead.
std::string dead_units(const GradientStats& s) {
  std::string out = "\ndead " + std::to_string(s.dead_units) + "/" + std::to_string(s.units);
  if (s.units > 0) out += " units (" + percent(static_cast<double>(s.dead_units) / s.units) + ")";
  out += "\nzero grads " + percent(s.zero_fraction);
  return out;
}

struct Table {
  std::mutex mutex;
  std::map<std::string, GradientAnnotation, std::less<>> by_op{
      {"relu", dead_units}, {"relu6", dead_units}, {"hardtanh", dead_units}};
};

Table& table() {
  static Table t;
  return t;
}

}  // namespace

void register_gradient_annotation(const std::string& op_name, GradientAnnotation annotate) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  if (op_name.empty()) return;
  if (annotate) {
    t.by_op[op_name] = std::move(annotate);
  } else {
    t.by_op.erase(op_name);
  }
}

GradientAnnotation gradient_annotation(const std::string& op_name) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  auto it = t.by_op.find(op_name);
  return it == t.by_op.end() ? GradientAnnotation() : it->second;
}

}  // namespace xgrad::viz
