#include "xgrad/storage.hpp"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
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
// Big blocks are reused instead of going back to the system. A block the system maps afresh
// costs a page fault per 4 KiB page on first touch (the kernel zeroes every page): for an op
// that writes a big new output — per-sample gradients under vmap write 50 MB per call — the
// faults cost more than the arithmetic. glibc already reuses blocks up to its adaptive mmap
// threshold (at most 32 MiB); blocks of 4 MiB and more are kept here, by exact size, up to
// 96 MiB in all (the oldest go first beyond that). Counted as freed by memory_allocated().
constexpr std::size_t kCacheMinBlock = std::size_t(4) << 20;
constexpr std::size_t kCacheCapacity = std::size_t(96) << 20;

struct BlockCache {
  std::mutex m;
  std::multimap<std::size_t, void*> blocks;  // size -> block, oldest first per size
  std::size_t bytes = 0;
};

BlockCache& block_cache() {
  static auto* cache = new BlockCache;  // never destroyed: storages may outlive statics
  return *cache;
}

std::size_t rounded_size(std::size_t nbytes) {
  std::size_t rounded = (nbytes + 63) / 64 * 64;  // aligned_alloc: a multiple of the alignment
  if (rounded >= kCacheMinBlock) rounded = (rounded + 4095) / 4096 * 4096;
  return rounded == 0 ? 64 : rounded;
}

void* allocate_block(std::size_t rounded) {
  if (rounded >= kCacheMinBlock) {
    BlockCache& c = block_cache();
    std::lock_guard<std::mutex> lock(c.m);
    auto it = c.blocks.find(rounded);
    if (it != c.blocks.end()) {
      void* p = it->second;
      c.blocks.erase(it);
      c.bytes -= rounded;
      return p;
    }
  }
  return std::aligned_alloc(64, rounded);
}

void release_block(void* p, std::size_t rounded) {
  if (rounded >= kCacheMinBlock && rounded <= kCacheCapacity) {
    BlockCache& c = block_cache();
    std::lock_guard<std::mutex> lock(c.m);
    while (c.bytes + rounded > kCacheCapacity && !c.blocks.empty()) {
      auto victim = c.blocks.begin();
      c.bytes -= victim->first;
      std::free(victim->second);
      c.blocks.erase(victim);
    }
    c.blocks.emplace(rounded, p);
    c.bytes += rounded;
    return;
  }
  std::free(p);
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
  data_ = allocate_block(rounded_size(nbytes));
  if (data_ == nullptr) throw std::bad_alloc();
  count_allocation(static_cast<std::int64_t>(nbytes_));
}

Storage::~Storage() {
  release_block(data_, rounded_size(nbytes_));
  g_allocated.fetch_sub(static_cast<std::int64_t>(nbytes_), std::memory_order_relaxed);
}

}  // namespace xgrad
