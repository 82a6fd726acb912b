#include "xgrad/storage.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace xgrad {

namespace {
// Relaxed: the counters order nothing else, and a relaxed add costs about as little as a
// plain one; they are read only for statistics (benchmarks, memory inspection).
std::atomic<std::int64_t> g_allocated{0};
std::atomic<std::int64_t> g_peak{0};

void count_allocation(std::int64_t n) {
  const std::int64_t now = g_allocated.fetch_add(n, std::memory_order_relaxed) + n;
  std::int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}
}  // namespace

std::int64_t memory_allocated() {
  return g_allocated.load(std::memory_order_relaxed);
}

std::int64_t max_memory_allocated() {
  return g_peak.load(std::memory_order_relaxed);
}

void reset_peak_memory_stats() {
  g_peak.store(g_allocated.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

Storage::Storage(std::size_t nbytes) : nbytes_(nbytes) {
  // aligned_alloc needs a size that is a multiple of the alignment.
  std::size_t rounded = (nbytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  data_ = std::aligned_alloc(64, rounded);
  if (data_ == nullptr) throw std::bad_alloc();
  count_allocation(static_cast<std::int64_t>(nbytes_));
}

Storage::~Storage() {
  std::free(data_);
  g_allocated.fetch_sub(static_cast<std::int64_t>(nbytes_), std::memory_order_relaxed);
}

}  // namespace xgrad
