// The DOT writer's styles and label helpers: one colour and shape per kind of node (the
// legend shows each), the look of a gradient's state, escaping. Internal to src/viz.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

#include "xgrad/autograd/node.hpp"
#include "xgrad/viz/gradients.hpp"

namespace xgrad::viz::dot_style {

inline constexpr const char* kOpColor = "#dbe7f5";
inline constexpr const char* kParamColor = "#cfe8cf";
inline constexpr const char* kInputColor = "#e8e8e8";
inline constexpr const char* kOutputColor = "#f5d0a9";
inline constexpr const char* kFoldColor = "#e4d7f5";
inline constexpr const char* kNanColor = "#f28b82";
inline constexpr const char* kVanishColor = "#ffd166";
inline constexpr const char* kNoGradColor = "#f7f7f7";

inline std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\r') continue;
    out += c;
  }
  return out;
}

inline std::string num(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// num() with a real minus sign (U+2212), so that a range cannot be read as a shape or a list.
inline std::string signed_num(double v) {
  std::string s = num(v);
  if (!s.empty() && s[0] == '-') s = "\u2212" + s.substr(1);
  return s;
}

inline std::string shape_dtype(const autograd::OutputMeta& m) {
  return format_shape(m.shape) + " " + std::string(dtype_name(m.dtype));
}

struct GradLook {
  std::string lines;           // label lines to append
  const char* fill = nullptr;  // replaces the kind's colour when set
  bool red = false, dashed = false;
};

enum class State { ok, vanishing, nonfinite, none };

inline State state_of(const GradientStats* s, double threshold) {
  if (!s) return State::none;
  if (!s->finite()) return State::nonfinite;
  if (s->norm < threshold) return State::vanishing;
  return State::ok;
}

// One line of its own: "grad ‖·‖ 0.31, min −0.2, max 0.4" (never a bare "[a, b]" that reads
// like the shape on the line above).
inline std::string stats_lines(const GradientStats& s) {
  std::string out = "\ngrad ‖·‖ " + num(s.norm);
  if (!s.finite()) {
    out += " (" + std::to_string(s.nan_count) + " NaN, " + std::to_string(s.inf_count) + " Inf)";
    if (s.nan_count == s.numel) return out;
  }
  out += ", min " + signed_num(s.min) + ", max " + signed_num(s.max);
  return out;
}

inline GradLook look(State st) {
  GradLook l;
  if (st == State::nonfinite) {
    l.fill = kNanColor;
    l.red = true;
  } else if (st == State::vanishing) {
    l.fill = kVanishColor;
  } else if (st == State::none) {
    l.fill = kNoGradColor;
    l.dashed = true;
  }
  return l;
}

inline std::string node_attrs(const char* shape, const char* style, const char* fill,
                              const std::string& label, const GradLook* g = nullptr) {
  std::string st = style;
  const char* color = fill;
  if (g && g->fill) color = g->fill;
  if (g && g->dashed) st += ",dashed";
  // Quoted only when it lists several styles (the attribute text stays as it always was).
  const std::string style_attr = st.find(',') == std::string::npos ? st : "\"" + st + "\"";
  std::string a = std::string("shape=") + shape + ", style=" + style_attr + ", fillcolor=\"" +
                  color + "\", label=\"" + escape(label) + "\"";
  if (g && g->red) a += ", color=\"#c5221f\", penwidth=2";
  return a;
}

}  // namespace xgrad::viz::dot_style
