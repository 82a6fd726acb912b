// Axis ticks and the text of labels, shared by the SVG plots.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "xgrad/error.hpp"
#include "xgrad/viz/plot.hpp"

namespace xgrad::viz {

std::vector<double> nice_ticks(double lo, double hi, int target) {
  check(std::isfinite(lo) && std::isfinite(hi) && lo < hi, "nice_ticks: expected lo < hi, got ", lo,
        " and ", hi);
  check(target > 0, "nice_ticks: target must be > 0, got ", target);
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step; k += 1)
    ticks.push_back(std::abs(k * step) < 1e-12 * step ? 0.0 : k * step);
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi, int target) {
  check(std::isfinite(lo) && std::isfinite(hi) && 0 < lo && lo < hi,
        "log_ticks: expected 0 < lo < hi, got ", lo, " and ", hi);
  check(target > 0, "log_ticks: target must be > 0, got ", target);
  // Powers of ten as 1eK parsed from text, so 1e-3 is the double nearest 0.001.
  auto power = [](long long k) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "1e%lld", k);
    return std::strtod(buf, nullptr);
  };
  const long long k0 = static_cast<long long>(std::ceil(std::log10(lo) - 1e-9));
  const long long k1 = static_cast<long long>(std::floor(std::log10(hi) + 1e-9));
  std::vector<double> ticks;
  if (k1 - k0 + 1 >= 3) {
    // Every decade, or every 2nd, 5th, ... (at multiples of it), at most `target` of them.
    auto multiples = [&](long long e) {
      std::vector<long long> ks;
      for (long long k = k0; k <= k1; ++k)
        if (k % e == 0) ks.push_back(k);
      return ks;
    };
    std::vector<long long> ks = multiples(1);
    for (long long e : {2, 5, 10, 20, 50, 100}) {
      if (static_cast<long long>(ks.size()) <= target) break;
      if (auto fewer = multiples(e); !fewer.empty()) ks = std::move(fewer);
    }
    for (long long k : ks) ticks.push_back(power(k));
    return ticks;
  }
  // Fewer than three powers of ten inside: 1, 2 and 5 times them.
  for (long long k = k0 - 1; k <= k1; ++k)
    for (int m : {1, 2, 5}) {
      const double t = m * power(k);
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks.push_back(t);
    }
  // A narrow range (1.01..1.02) holds none of those: linear ticks.
  return ticks.size() >= 2 ? ticks : nice_ticks(lo, hi);
}

std::string label_number(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  std::string s = buf;
  if (s == "-0") s = "0";
  if (!s.empty() && s[0] == '-') s = "\u2212" + s.substr(1);
  return s;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

}  // namespace xgrad::viz
