// SVG line plots with axes, "nice" ticks (linear or log scale) and a legend: the pictures the
// tools draw of numbers over steps (a loss curve, a learning-rate schedule). No dependency: the
// SVG is written as text. contour.hpp draws a function of two variables with paths over it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace xgrad::viz {

/// About `target` ticks at multiples of a "nice" step (1, 2 or 5 × 10^k) inside [lo, hi]:
/// 0..1 gives 0, 0.2, 0.4, 0.6, 0.8, 1; -2..2 gives -2, -1, 0, 1, 2. A tick at zero is +0.
/// Requires lo < hi, both finite (throws xgrad::Error otherwise). Source: P. S. Heckbert,
/// "Nice numbers for graph labels", Graphics Gems, Academic Press, 1990 (the 1-2-5 steps).
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

/// Ticks for a log-scale axis over [lo, hi] (0 < lo < hi, finite; throws xgrad::Error
/// otherwise): the powers of ten inside it (1e-3..10 gives 1e-3, 1e-2, 0.1, 1, 10); with more
/// than `target` of them, those of every 2nd, 5th, 10th, ... exponent (1e-12..1e4 gives 1e-12,
/// 1e-10, ..., 1e4); when fewer than three powers of ten fall inside, 1, 2 and 5 × 10^k, and
/// nice_ticks when fewer than two of those do.
std::vector<double> log_ticks(double lo, double hi, int target = 10);

/// A number for a label: printf's "%.{digits}g" with a real minus sign (U+2212) and no "-0".
std::string label_number(double v, int digits = 3);

/// `s` with &, <, >, " and ' escaped for XML text and attribute values.
std::string xml_escape(std::string_view s);

/// One line of a LinePlot: the points (x[i], y[i]). Points with a NaN or infinite coordinate
/// are skipped, lifting the pen (the line is broken there).
struct Series {
  std::string label;  // the legend entry
  std::vector<double> x, y;
};

/// An axis: its caption and its scale.
struct Axis {
  std::string label;
  bool log = false;  // log scale: every finite value on it must be > 0
};

/// A line plot: a frame with ticks on both axes, one coloured line per series (ten colours,
/// then again), a legend on the right. The axes span the finite points of all series.
struct LinePlot {
  std::string title;
  Axis x, y;
  std::vector<Series> series;
  double width = 760, height = 440;  // pixels, legend included
};

/// The plot as an SVG document. Throws xgrad::Error when there is no series, a series' x and y
/// differ in length, no series has a finite point, or a log axis gets a value <= 0.
std::string line_plot_svg(const LinePlot& plot);

/// Writes line_plot_svg(plot) to `path` with io::write_file_atomically. Throws xgrad::Error as
/// line_plot_svg does, and when the file cannot be written (naming the path).
void write_line_plot(const std::string& path, const LinePlot& plot);

}  // namespace xgrad::viz
