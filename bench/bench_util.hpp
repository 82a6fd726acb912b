// Small timing helpers shared by the xgrad-only benchmarks.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace bench {

/// The median of v (the upper one for an even count).
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Wall-clock seconds that f() takes.
template <class F>
double seconds(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace bench
