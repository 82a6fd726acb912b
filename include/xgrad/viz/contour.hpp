// Contour lines of a function of two variables (marching squares), and the picture
// xgrad-descent draws with them: the function's contours, paths walked over it (an
// optimizer's iterates), their start, the function's minima and a legend.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <vector>

namespace xgrad::viz {

/// A polyline: points (x, y).
using Polyline = std::vector<std::array<double, 2>>;

/// The contour lines of a grid of samples at height `level`: marching squares with linear
/// interpolation along the cell edges, a saddle cell decided by the mean of its corners, the
/// segments chained into polylines (closed ones end at their first point). The grid has
/// nx × ny samples, values[j * nx + i] at column i, row j; points come back in grid
/// coordinates (i, j) as doubles. Cells with a NaN or infinite corner are left out. The order
/// is deterministic: open lines first. Throws xgrad::Error when values.size() != nx * ny or
/// nx, ny < 2. Source: marching squares, the 2-D case of W. E. Lorensen and H. E. Cline,
/// "Marching cubes: a high resolution 3D surface construction algorithm", SIGGRAPH 1987.
std::vector<Polyline> contour_lines(const std::vector<double>& values, int nx, int ny,
                                    double level);

/// One path over the function: its legend label and its points (x, y, f(x, y)).
struct ContourPath {
  std::string label;
  std::vector<std::array<double, 3>> points;
};

/// The picture: `f` sampled on a 161 × 161 grid over `window`, 24 contour levels spaced
/// logarithmically above the grid's lowest value (from its 0.2% to its 99% quantile), the paths
/// on top, a white circle at `start`, black crosses at `minima`, a legend with each path's end
/// point (or "diverged").
struct ContourPlot {
  std::string document_title;  // the SVG's <title>
  std::string heading;         // bold first line
  std::string subheading;      // grey second line
  std::function<double(double, double)> f;
  std::array<double, 4> window{};  // xmin, xmax, ymin, ymax
  /// Widen `window` to hold the start and the paths' points (with a 5% margin); points more
  /// than one window width or height outside it are not zoomed out to.
  bool fit_paths = true;
  std::array<double, 2> start{};
  std::vector<std::array<double, 2>> minima;
  std::string minima_label = "global minimum";
  std::string legend_title = "paths (end point, f)";
  std::vector<ContourPath> paths;
};

/// The picture as an SVG document, 994 by 672 pixels. Throws xgrad::Error when `f` is
/// empty or the window is not xmin < xmax, ymin < ymax (finite).
std::string contour_plot_svg(const ContourPlot& plot);

/// Writes contour_plot_svg(plot) to `path` with io::write_file_atomically. Throws xgrad::Error
/// as contour_plot_svg does, and when the file cannot be written (naming the path).
void write_contour_plot(const std::string& path, const ContourPlot& plot);

}  // namespace xgrad::viz
