// The contour picture: a function's contour lines with paths over it (xgrad-descent's SVG).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "viz/svg.hpp"
#include "xgrad/error.hpp"
#include "xgrad/io/atomic_file.hpp"
#include "xgrad/viz/contour.hpp"
#include "xgrad/viz/plot.hpp"

namespace xgrad::viz {

namespace {

using svg::colour;
using svg::fixed;
using svg::short_number;

/// Colour of contour level k of n: slate blue (low f, the valleys) to light grey (high f).
std::string level_colour(int k, int n) {
  const double t = n > 1 ? static_cast<double>(k) / (n - 1) : 0.0;
  const double lo[3] = {40, 70, 120}, hi[3] = {190, 196, 204};
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(lo[0] + t * (hi[0] - lo[0])),
                static_cast<int>(lo[1] + t * (hi[1] - lo[1])),
                static_cast<int>(lo[2] + t * (hi[2] - lo[2])));
  return buf;
}

using Point = std::array<double, 3>;  // x, y, f

/// The region shown: the window, widened (when asked) to hold the start and every path.
std::array<double, 4> shown_window(const ContourPlot& p) {
  std::array<double, 4> w = p.window;
  if (!p.fit_paths) return w;
  const std::array<double, 4> base = p.window;
  const double bw = base[1] - base[0], bh = base[3] - base[2];
  auto widen = [&](double x, double y) {
    if (!std::isfinite(x) || !std::isfinite(y)) return;
    if (x < base[0] - bw || x > base[1] + bw || y < base[2] - bh || y > base[3] + bh) return;
    const double mx = 0.05 * bw, my = 0.05 * bh;
    w[0] = std::min(w[0], x - mx);
    w[1] = std::max(w[1], x + mx);
    w[2] = std::min(w[2], y - my);
    w[3] = std::max(w[3], y + my);
  };
  widen(p.start[0], p.start[1]);
  for (const ContourPath& t : p.paths)
    for (const Point& q : t.points) widen(q[0], q[1]);
  return w;
}

/// Log-spaced heights above the grid's lowest value, from its 0.2% to its 99% quantile: the
/// valleys get as many lines as the walls, and a few huge corners do not take them all.
std::vector<double> contour_heights(const std::vector<double>& grid, int levels) {
  double fmin = INFINITY;
  for (double g : grid)
    if (std::isfinite(g)) fmin = std::min(fmin, g);
  std::vector<double> heights, above;
  for (double g : grid)
    if (std::isfinite(g) && g > fmin) above.push_back(g - fmin);
  if (above.size() <= 10) return heights;
  std::sort(above.begin(), above.end());
  auto quantile = [&](double q) {
    return above[static_cast<std::size_t>(q * static_cast<double>(above.size() - 1))];
  };
  const double a = std::log10(quantile(0.002)), b = std::log10(quantile(0.99));
  for (int k = 0; k < levels; ++k)
    heights.push_back(fmin + std::pow(10.0, a + (b - a) * k / (levels - 1)));
  return heights;
}

/// The path data of contour lines in pixels: coordinates to 0.1 px ("12" for 12.0), repeated
/// points dropped, lines that shrink to a point at that precision left out.
std::string contour_path_data(const std::vector<Polyline>& lines, int n, double left, double top,
                              double size) {
  std::string d;
  for (const auto& line : lines) {
    std::vector<std::string> pts;
    for (const auto& q : line) {
      std::string xs = fixed(left + q[0] / (n - 1) * size),
                  ys = fixed(top + size - q[1] / (n - 1) * size);
      for (std::string* t : {&xs, &ys})
        if (t->size() > 2 && t->compare(t->size() - 2, 2, ".0") == 0) t->resize(t->size() - 2);
      std::string pt = xs + "," + ys;
      if (pts.empty() || pts.back() != pt) pts.push_back(std::move(pt));
    }
    if (pts.size() < 2) continue;
    for (std::size_t q = 0; q < pts.size(); ++q) d += (q == 0 ? "M" : q == 1 ? "L" : " ") + pts[q];
  }
  return d;
}

/// A cross of half-width 5 at (x, y), as path data.
std::string cross(double x, double y, double r = 5) {
  return "M" + fixed(x - r) + "," + fixed(y - r) + "L" + fixed(x + r) + "," + fixed(y + r) + "M" +
         fixed(x - r) + "," + fixed(y + r) + "L" + fixed(x + r) + "," + fixed(y - r);
}

}  // namespace

std::string contour_plot_svg(const ContourPlot& p) {
  check(static_cast<bool>(p.f), "contour_plot_svg: no function to draw");
  for (double v : p.window) check(std::isfinite(v), "contour_plot_svg: the window must be finite");
  check(p.window[0] < p.window[1] && p.window[2] < p.window[3],
        "contour_plot_svg: expected xmin < xmax and ymin < ymax in the window");
  const std::array<double, 4> w = shown_window(p);
  const double ww = w[1] - w[0], wh = w[3] - w[2];

  // Layout (pixels): title on top, square plot on the left, legend on the right.
  const double left = 64, top = 56, size = 560, legend_x = left + size + 28;
  const double legend_w = 330;
  const double width = legend_x + legend_w + 12;
  const double height = top + size + 56;
  auto px = [&](double x) { return left + (x - w[0]) / ww * size; };
  auto py = [&](double y) { return top + (w[3] - y) / wh * size; };

  std::ostringstream s;
  s << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << fixed(width, 0) << "\" height=\""
    << fixed(height, 0) << "\" viewBox=\"0 0 " << fixed(width, 0) << " " << fixed(height, 0)
    << "\" font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\" font-size=\"12\">\n"
    << "<title>" << xml_escape(p.document_title) << "</title>\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
    << "<defs><clipPath id=\"plot\"><rect x=\"" << fixed(left) << "\" y=\"" << fixed(top)
    << "\" width=\"" << fixed(size) << "\" height=\"" << fixed(size) << "\"/></clipPath></defs>\n";
  s << "<text x=\"" << fixed(left) << "\" y=\"24\" font-size=\"16\" font-weight=\"bold\">"
    << xml_escape(p.heading) << "</text>\n"
    << "<text x=\"" << fixed(left) << "\" y=\"43\" fill=\"#444444\">" << xml_escape(p.subheading)
    << "</text>\n";

  // Contours of f on a grid.
  const int n = 161, levels = 24;
  std::vector<double> grid(static_cast<std::size_t>(n) * n);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i)
      grid[static_cast<std::size_t>(j) * n + i] =
          p.f(w[0] + ww * i / (n - 1), w[2] + wh * j / (n - 1));
  const std::vector<double> heights = contour_heights(grid, levels);
  s << "<g clip-path=\"url(#plot)\" fill=\"none\" stroke-width=\"0.9\" "
       "stroke-linejoin=\"round\">\n";
  for (int k = 0; k < static_cast<int>(heights.size()); ++k) {
    const double h = heights[static_cast<std::size_t>(k)];
    const std::string d = contour_path_data(contour_lines(grid, n, n, h), n, left, top, size);
    if (d.empty()) continue;
    s << "<path stroke=\"" << level_colour(k, levels) << "\" data-level=\"" << short_number(h)
      << "\" d=\"" << d << "\"/>\n";
  }
  s << "</g>\n";

  // Frame and axis ticks.
  s << "<rect x=\"" << fixed(left) << "\" y=\"" << fixed(top) << "\" width=\"" << fixed(size)
    << "\" height=\"" << fixed(size) << "\" fill=\"none\" stroke=\"#222222\"/>\n";
  s << "<g stroke=\"#222222\">\n";
  const auto xt = nice_ticks(w[0], w[1]), yt = nice_ticks(w[2], w[3]);
  for (double t : xt)
    s << "<line x1=\"" << fixed(px(t)) << "\" y1=\"" << fixed(top + size) << "\" x2=\""
      << fixed(px(t)) << "\" y2=\"" << fixed(top + size + 5) << "\"/>\n";
  for (double t : yt)
    s << "<line x1=\"" << fixed(left - 5) << "\" y1=\"" << fixed(py(t)) << "\" x2=\"" << fixed(left)
      << "\" y2=\"" << fixed(py(t)) << "\"/>\n";
  s << "</g>\n<g fill=\"#222222\">\n";
  for (double t : xt)
    s << "<text x=\"" << fixed(px(t)) << "\" y=\"" << fixed(top + size + 19)
      << "\" text-anchor=\"middle\">" << label_number(t) << "</text>\n";
  for (double t : yt)
    s << "<text x=\"" << fixed(left - 8) << "\" y=\"" << fixed(py(t) + 4)
      << "\" text-anchor=\"end\">" << label_number(t) << "</text>\n";
  s << "<text x=\"" << fixed(left + size / 2) << "\" y=\"" << fixed(top + size + 40)
    << "\" text-anchor=\"middle\" font-style=\"italic\" font-size=\"14\">x</text>\n"
    << "<text x=\"" << fixed(left - 44) << "\" y=\"" << fixed(top + size / 2)
    << "\" text-anchor=\"middle\" font-style=\"italic\" font-size=\"14\">y</text>\n</g>\n";

  // Minima (black crosses), the paths, the start (white circle) and each end point. Points
  // far outside the view (ten view sizes) lift the pen instead of drawing a huge line.
  const double far_x0 = w[0] - 10 * ww, far_x1 = w[1] + 10 * ww, far_y0 = w[2] - 10 * wh,
               far_y1 = w[3] + 10 * wh;
  auto drawable = [&](const Point& q) {
    return std::isfinite(q[0]) && std::isfinite(q[1]) && q[0] > far_x0 && q[0] < far_x1 &&
           q[1] > far_y0 && q[1] < far_y1;
  };
  auto inside = [&](const Point& q) {
    return std::isfinite(q[0]) && std::isfinite(q[1]) && q[0] >= w[0] && q[0] <= w[1] &&
           q[1] >= w[2] && q[1] <= w[3];
  };
  s << "<g clip-path=\"url(#plot)\">\n<g stroke=\"#000000\" stroke-width=\"2\">\n";
  for (const auto& m : p.minima) s << "<path d=\"" << cross(px(m[0]), py(m[1])) << "\"/>\n";
  s << "</g>\n<g fill=\"none\" stroke-width=\"2\" stroke-linejoin=\"round\" "
       "stroke-linecap=\"round\" stroke-opacity=\"0.9\">\n";
  for (std::size_t k = 0; k < p.paths.size(); ++k) {
    std::string d;
    bool pen_down = false;
    for (const Point& q : p.paths[k].points) {
      if (!drawable(q)) {
        pen_down = false;
        continue;
      }
      d += (pen_down ? " " : "M") + fixed(px(q[0]), 2) + "," + fixed(py(q[1]), 2);
      if (!pen_down) d += "L";
      pen_down = true;
    }
    // A lone "M x,yL" (one point) is not a valid path: drop the dangling L.
    std::string clean;
    for (std::size_t i = 0; i < d.size(); ++i) {
      if (d[i] == 'L' && (i + 1 == d.size() || d[i + 1] == 'M')) continue;
      clean += d[i];
    }
    if (!clean.empty())
      s << "<path stroke=\"" << colour(k) << "\" d=\"" << clean << "\">"
        << "<title>" << xml_escape(p.paths[k].label) << "</title></path>\n";
  }
  s << "</g>\n";
  s << "<circle cx=\"" << fixed(px(p.start[0])) << "\" cy=\"" << fixed(py(p.start[1]))
    << "\" r=\"6\" fill=\"#ffffff\" stroke=\"#000000\" stroke-width=\"2\"/>\n";
  for (std::size_t k = 0; k < p.paths.size(); ++k) {
    if (p.paths[k].points.empty()) continue;
    const Point& e = p.paths[k].points.back();
    if (!inside(e)) continue;
    s << "<circle cx=\"" << fixed(px(e[0])) << "\" cy=\"" << fixed(py(e[1])) << "\" r=\"5\" fill=\""
      << colour(k) << "\" stroke=\"#ffffff\" stroke-width=\"1.5\"/>\n";
  }
  s << "</g>\n";

  // Legend: one entry per path with its colour, label and where it ended.
  double ly = top + 8;
  s << "<g font-size=\"12\">\n"
    << "<text x=\"" << fixed(legend_x) << "\" y=\"" << fixed(ly + 4) << "\" font-weight=\"bold\">"
    << xml_escape(p.legend_title) << "</text>\n";
  ly += 24;
  for (std::size_t k = 0; k < p.paths.size(); ++k) {
    s << "<line x1=\"" << fixed(legend_x) << "\" y1=\"" << fixed(ly) << "\" x2=\""
      << fixed(legend_x + 22) << "\" y2=\"" << fixed(ly) << "\" stroke=\"" << colour(k)
      << "\" stroke-width=\"3\"/>\n"
      << "<circle cx=\"" << fixed(legend_x + 22) << "\" cy=\"" << fixed(ly) << "\" r=\"4\" fill=\""
      << colour(k) << "\" stroke=\"#ffffff\"/>\n"
      << "<text x=\"" << fixed(legend_x + 32) << "\" y=\"" << fixed(ly + 4) << "\">"
      << xml_escape(p.paths[k].label) << "</text>\n";
    std::string where = "no points";
    if (!p.paths[k].points.empty()) {
      const Point& e = p.paths[k].points.back();
      if (!std::isfinite(e[0]) || !std::isfinite(e[1]) || !std::isfinite(e[2]))
        where = "diverged (not finite)";
      else
        where = "(" + label_number(e[0], 4) + ", " + label_number(e[1], 4) +
                "), f = " + label_number(e[2], 3) + (inside(e) ? "" : ", outside the view");
    }
    s << "<text x=\"" << fixed(legend_x + 32) << "\" y=\"" << fixed(ly + 19)
      << "\" fill=\"#555555\" font-size=\"11\">" << xml_escape(where) << "</text>\n";
    ly += 38;
  }
  ly += 6;
  s << "<circle cx=\"" << fixed(legend_x + 11) << "\" cy=\"" << fixed(ly)
    << "\" r=\"5\" fill=\"#ffffff\" stroke=\"#000000\" stroke-width=\"2\"/>\n"
    << "<text x=\"" << fixed(legend_x + 32) << "\" y=\"" << fixed(ly + 4) << "\">start</text>\n";
  ly += 22;
  s << "<path d=\"" << cross(legend_x + 11, ly, 4) << "\" stroke=\"#000000\" stroke-width=\"2\"/>\n"
    << "<text x=\"" << fixed(legend_x + 32) << "\" y=\"" << fixed(ly + 4) << "\">"
    << xml_escape(p.minima_label) << "</text>\n";
  ly += 22;
  if (!heights.empty())
    s << "<text x=\"" << fixed(legend_x) << "\" y=\"" << fixed(ly + 4)
      << "\" fill=\"#555555\" font-size=\"11\">contours: " << heights.size()
      << " log-spaced levels of f, " << label_number(heights.front()) << " to "
      << label_number(heights.back()) << "</text>\n";
  s << "</g>\n</svg>\n";
  return s.str();
}

void write_contour_plot(const std::string& path, const ContourPlot& plot) {
  io::write_file_atomically(path, contour_plot_svg(plot));
}

}  // namespace xgrad::viz
