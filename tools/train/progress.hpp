// xgrad-train's progress bar: one line, redrawn in place on a terminal, counting the steps of
// the whole run (epochs x batches, capped by --max-steps) with an estimate of the time left.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

namespace xgrad::train {

/// Steps the run makes in all: `epochs` x `batches_per_epoch`, or `max_steps` when that is
/// smaller (max_steps <= 0: no limit). Steps count from the start of the run, as --max-steps
/// does (a resumed run included).
inline std::int64_t total_steps(std::int64_t epochs, std::int64_t batches_per_epoch,
                                std::int64_t max_steps) {
  const std::int64_t all = epochs * batches_per_epoch;
  return max_steps > 0 ? std::min(all, max_steps) : all;
}

/// A duration as "42s", "3:07" (minutes:seconds) or "1:02:03"; "?" when not finite or < 0.
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<std::int64_t>(std::llround(seconds));
  char buf[48];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

/// "[#####.........]" for frac in [0, 1] (clamped), `width` cells.
inline std::string progress_bar(double frac, int width = 30) {
  const int full = static_cast<int>(std::clamp(frac, 0.0, 1.0) * width);
  return "[" + std::string(static_cast<std::size_t>(full), '#') +
         std::string(static_cast<std::size_t>(width - full), '.') + "]";
}

/// The progress line: "epoch 1/3 [###...] 1234/40000  loss 0.5123  2512 samples/s  ETA 3:07".
/// `step` of `total` steps are done; `done_this_run` of them in `seconds` (the ETA assumes
/// the remaining steps take as long each; "?" before the first).
inline std::string progress_line(std::int64_t epoch, std::int64_t epochs, std::int64_t step,
                                 std::int64_t total, double mean_loss, double samples_per_s,
                                 std::int64_t done_this_run, double seconds) {
  const double eta = done_this_run > 0
                         ? seconds / static_cast<double>(done_this_run) *
                               static_cast<double>(std::max<std::int64_t>(total - step, 0))
                         : NAN;
  char buf[256];
  std::snprintf(
      buf, sizeof buf, "epoch %lld/%lld %s %lld/%lld  loss %.4f  %.0f samples/s  ETA %s",
      static_cast<long long>(epoch), static_cast<long long>(epochs),
      progress_bar(total > 0 ? static_cast<double>(step) / static_cast<double>(total) : 1).c_str(),
      static_cast<long long>(step), static_cast<long long>(total), mean_loss, samples_per_s,
      format_duration(eta).c_str());
  return buf;
}

}  // namespace xgrad::train
