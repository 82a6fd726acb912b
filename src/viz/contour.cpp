// Marching squares: the contour lines of a grid of samples at one level.
#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>
#include <utility>

#include "xgrad/error.hpp"
#include "xgrad/viz/contour.hpp"

namespace xgrad::viz {

namespace {

// The edges of a grid cell and their ends as corner offsets (di0, dj0)-(di1, dj1).
enum Edge { kBottom, kRight, kTop, kLeft };
constexpr int kEdgeCorners[4][4] = {{0, 0, 1, 0}, {1, 0, 1, 1}, {0, 1, 1, 1}, {0, 0, 0, 1}};

// The edges the one contour segment of a cell joins, by its corner pattern k (bit 0: c00 above
// the level, 1: c10, 2: c11, 3: c01) folded to min(k, 15 - k): the same corners above or below
// cross the same edges. 0 (no crossing) and 5 (a saddle, two segments) are not looked up.
constexpr std::pair<Edge, Edge> kSegment[8] = {
    {},                 // 0: unused
    {kLeft, kBottom},   // c00
    {kBottom, kRight},  // c10
    {kLeft, kRight},    // c00 c10
    {kRight, kTop},     // c11
    {},                 // 5: unused
    {kBottom, kTop},    // c10 c11
    {kLeft, kTop},      // c00 c10 c11
};

}  // namespace

std::vector<Polyline> contour_lines(const std::vector<double>& v, int nx, int ny, double level) {
  check(nx >= 2 && ny >= 2, "contour_lines: the grid must be at least 2 x 2, got ", nx, " x ", ny);
  check(v.size() == static_cast<std::size_t>(nx) * static_cast<std::size_t>(ny),
        "contour_lines: ", v.size(), " values for a ", nx, " x ", ny, " grid");
  // A crossing lives on a grid edge: id 2*(j*nx+i) is the edge (i,j)-(i+1,j), +1 the edge
  // (i,j)-(i,j+1). Both cells sharing an edge compute the same point, so chains join by id.
  std::unordered_map<long long, std::array<double, 2>> point;
  std::unordered_map<long long, std::vector<long long>> links;
  auto at = [&](int i, int j) { return v[static_cast<std::size_t>(j) * nx + i]; };
  auto crossing = [&](int i0, int j0, int i1, int j1) -> long long {
    const long long id = 2LL * (static_cast<long long>(j0) * nx + i0) + (j1 != j0 ? 1 : 0);
    if (!point.count(id)) {
      const double a = at(i0, j0), b = at(i1, j1);
      const double t = a == b ? 0.5 : std::clamp((level - a) / (b - a), 0.0, 1.0);
      point[id] = {i0 + t * (i1 - i0), j0 + t * (j1 - j0)};
    }
    return id;
  };
  auto link = [&](long long a, long long b) {
    links[a].push_back(b);
    links[b].push_back(a);
  };
  for (int j = 0; j + 1 < ny; ++j) {
    for (int i = 0; i + 1 < nx; ++i) {
      const double c00 = at(i, j), c10 = at(i + 1, j), c11 = at(i + 1, j + 1), c01 = at(i, j + 1);
      if (!std::isfinite(c00) || !std::isfinite(c10) || !std::isfinite(c11) || !std::isfinite(c01))
        continue;
      const int k = (c00 > level) | (c10 > level) << 1 | (c11 > level) << 2 | (c01 > level) << 3;
      if (k == 0 || k == 15) continue;
      const bool centre_above = (c00 + c10 + c11 + c01) / 4 > level;
      auto join = [&](Edge e0, Edge e1) {
        auto crossing_on = [&](Edge e) {
          const int* d = kEdgeCorners[e];
          return crossing(i + d[0], j + d[1], i + d[2], j + d[3]);
        };
        link(crossing_on(e0), crossing_on(e1));
      };
      if (k == 5 || k == 10) {
        // A saddle (c00 and c11 above, or c10 and c01): the centre's side decides which pair of
        // opposite corners the two segments cut off, c00 and c11 or c10 and c01.
        const bool cut_c00_c11 = (k == 5) != centre_above;
        join(kLeft, cut_c00_c11 ? kBottom : kTop);
        join(kRight, cut_c00_c11 ? kTop : kBottom);
        continue;
      }
      const auto [e0, e1] = kSegment[std::min(k, 15 - k)];
      join(e0, e1);
    }
  }
  // Walk the chains: open ones from their ends first, then closed loops.
  std::vector<Polyline> lines;
  std::set<long long> done;
  auto walk = [&](long long start) {
    Polyline line;
    long long prev = -1, cur = start;
    while (cur >= 0 && done.insert(cur).second) {
      line.push_back(point.at(cur));
      long long next = -1;
      for (long long n : links.at(cur))
        if (n != prev && !done.count(n)) {
          next = n;
          break;
        }
      if (next < 0)  // closing a loop: back to the start
        for (long long n : links.at(cur))
          if (n == start && n != prev && line.size() > 2) line.push_back(point.at(start));
      prev = cur;
      cur = next;
    }
    if (line.size() > 1) lines.push_back(std::move(line));
  };
  std::vector<long long> ids;
  for (auto& [id, n] : links) ids.push_back(id);
  std::sort(ids.begin(), ids.end());  // deterministic output
  for (long long id : ids)
    if (links.at(id).size() == 1 && !done.count(id)) walk(id);
  for (long long id : ids)
    if (!done.count(id)) walk(id);
  return lines;
}

}  // namespace xgrad::viz
