// Internal helpers of the SVG writers (plot.cpp, contour_plot.cpp): numbers for coordinates
// and attributes, and the colours of lines.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>

namespace xgrad::viz::svg {

/// "%.{decimals}f" without a negative zero: a pixel coordinate.
inline std::string fixed(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s == "-0.0" || s == "-0" || s == "-0.00") s = s.substr(1);
  return s;
}

/// "%.3g" as plain ASCII (for attributes); "nan" for any NaN.
inline std::string short_number(double v) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

/// Line colour k: matplotlib's ten "tab" colours, then again.
inline const char* colour(std::size_t k) {
  static const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return palette[k % 10];
}

}  // namespace xgrad::viz::svg
