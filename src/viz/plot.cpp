// Line plots: series of (x, y) points on linear or log axes, with ticks and a legend.
#include "xgrad/viz/plot.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "viz/svg.hpp"
#include "xgrad/error.hpp"
#include "xgrad/io/atomic_file.hpp"

namespace xgrad::viz {

namespace {

using svg::colour;
using svg::fixed;

/// The span of an axis over the finite points, widened when it is a single value.
struct Span {
  double lo = INFINITY, hi = -INFINITY;
  bool log = false;
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  void widen() {
    if (lo < hi) return;
    if (log) {
      lo /= 10;
      hi *= 10;
    } else {
      const double d = lo == 0 ? 1 : 0.1 * std::abs(lo);
      lo -= d;
      hi += d;
    }
  }
  /// Position of v in the span, 0 at lo and 1 at hi.
  double at(double v) const {
    return log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
               : (v - lo) / (hi - lo);
  }
  std::vector<double> ticks() const { return log ? log_ticks(lo, hi) : nice_ticks(lo, hi); }
};

bool finite_point(double x, double y) {
  return std::isfinite(x) && std::isfinite(y);
}

}  // namespace

std::string line_plot_svg(const LinePlot& plot) {
  check(!plot.series.empty(), "line_plot_svg: no series to draw");
  Span sx, sy;
  sx.log = plot.x.log;
  sy.log = plot.y.log;
  for (const Series& s : plot.series) {
    check(s.x.size() == s.y.size(), "line_plot_svg: series '", s.label, "' has ", s.x.size(),
          " x values and ", s.y.size(), " y values");
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!finite_point(s.x[i], s.y[i])) continue;
      check(!sx.log || s.x[i] > 0, "line_plot_svg: series '", s.label, "' has x = ", s.x[i],
            " on a log axis (values must be > 0)");
      check(!sy.log || s.y[i] > 0, "line_plot_svg: series '", s.label, "' has y = ", s.y[i],
            " on a log axis (values must be > 0)");
      sx.add(s.x[i]);
      sy.add(s.y[i]);
    }
  }
  check(sx.lo <= sx.hi, "line_plot_svg: no series has a finite point");
  sx.widen();
  sy.widen();

  // Layout (pixels): title on top, the plot, the legend on its right.
  const double legend_w = 200, left = 72, top = 48, bottom = 56;
  const double pw = std::max(100.0, plot.width - left - legend_w - 16);
  const double ph = std::max(100.0, plot.height - top - bottom);
  const double width = left + pw + legend_w + 16, height = top + ph + bottom;
  const double legend_x = left + pw + 20;
  auto px = [&](double x) { return left + sx.at(x) * pw; };
  auto py = [&](double y) { return top + (1 - sy.at(y)) * ph; };

  std::ostringstream s;
  s << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << fixed(width, 0) << "\" height=\""
    << fixed(height, 0) << "\" viewBox=\"0 0 " << fixed(width, 0) << " " << fixed(height, 0)
    << "\" font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\" font-size=\"12\">\n"
    << "<title>" << xml_escape(plot.title) << "</title>\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
    << "<defs><clipPath id=\"plot\"><rect x=\"" << fixed(left) << "\" y=\"" << fixed(top)
    << "\" width=\"" << fixed(pw) << "\" height=\"" << fixed(ph) << "\"/></clipPath></defs>\n"
    << "<text x=\"" << fixed(left) << "\" y=\"28\" font-size=\"16\" font-weight=\"bold\">"
    << xml_escape(plot.title) << "</text>\n";

  // Grid lines and ticks.
  const std::vector<double> xt = sx.ticks(), yt = sy.ticks();
  s << "<g stroke=\"#e4e4e4\">\n";
  for (double t : xt)
    s << "<line x1=\"" << fixed(px(t)) << "\" y1=\"" << fixed(top) << "\" x2=\"" << fixed(px(t))
      << "\" y2=\"" << fixed(top + ph) << "\"/>\n";
  for (double t : yt)
    s << "<line x1=\"" << fixed(left) << "\" y1=\"" << fixed(py(t)) << "\" x2=\""
      << fixed(left + pw) << "\" y2=\"" << fixed(py(t)) << "\"/>\n";
  s << "</g>\n<rect x=\"" << fixed(left) << "\" y=\"" << fixed(top) << "\" width=\"" << fixed(pw)
    << "\" height=\"" << fixed(ph) << "\" fill=\"none\" stroke=\"#222222\"/>\n"
    << "<g fill=\"#222222\">\n";
  for (double t : xt)
    s << "<text x=\"" << fixed(px(t)) << "\" y=\"" << fixed(top + ph + 18)
      << "\" text-anchor=\"middle\">" << label_number(t) << "</text>\n";
  for (double t : yt)
    s << "<text x=\"" << fixed(left - 6) << "\" y=\"" << fixed(py(t) + 4)
      << "\" text-anchor=\"end\">" << label_number(t) << "</text>\n";
  s << "<text x=\"" << fixed(left + pw / 2) << "\" y=\"" << fixed(top + ph + 42)
    << "\" text-anchor=\"middle\">" << xml_escape(plot.x.label) << "</text>\n"
    << "<text transform=\"translate(" << fixed(18) << "," << fixed(top + ph / 2)
    << ") rotate(-90)\" text-anchor=\"middle\">" << xml_escape(plot.y.label) << "</text>\n</g>\n";

  // The lines: a NaN or infinite point lifts the pen; a lone point is drawn as a dot.
  s << "<g clip-path=\"url(#plot)\" fill=\"none\" stroke-width=\"1.8\" stroke-linejoin=\"round\" "
       "stroke-linecap=\"round\">\n";
  for (std::size_t k = 0; k < plot.series.size(); ++k) {
    const Series& sr = plot.series[k];
    std::string d;
    std::size_t run = 0;
    for (std::size_t i = 0; i < sr.x.size(); ++i) {
      if (!finite_point(sr.x[i], sr.y[i])) {
        if (run == 1) d += "h0";  // a lone point: a zero-length segment, drawn by its round cap
        run = 0;
        continue;
      }
      d += (run == 0   ? "M"
            : run == 1 ? "L"
                       : " ") +
           fixed(px(sr.x[i]), 2) + "," + fixed(py(sr.y[i]), 2);
      ++run;
    }
    if (run == 1) d += "h0";
    if (d.empty()) continue;
    s << "<path stroke=\"" << colour(k) << "\" d=\"" << d << "\"><title>" << xml_escape(sr.label)
      << "</title></path>\n";
  }
  s << "</g>\n";

  // Legend.
  s << "<g font-size=\"12\">\n";
  double ly = top + 8;
  for (std::size_t k = 0; k < plot.series.size(); ++k) {
    s << "<line x1=\"" << fixed(legend_x) << "\" y1=\"" << fixed(ly) << "\" x2=\""
      << fixed(legend_x + 22) << "\" y2=\"" << fixed(ly) << "\" stroke=\"" << colour(k)
      << "\" stroke-width=\"3\"/>\n<text x=\"" << fixed(legend_x + 30) << "\" y=\"" << fixed(ly + 4)
      << "\">" << xml_escape(plot.series[k].label) << "</text>\n";
    ly += 20;
  }
  s << "</g>\n</svg>\n";
  return s.str();
}

void write_line_plot(const std::string& path, const LinePlot& plot) {
  io::write_file_atomically(path, line_plot_svg(plot));
}

}  // namespace xgrad::viz
