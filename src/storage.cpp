#include "xgrad/storage.hpp"

#include <atomic>
#include <bit>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

namespace xgrad {

namespace {
// memory_allocated() and its peak, counted per thread so that a storage costs no locked
// instruction (two per storage with one global atomic counter, ~1/8 of a 1-element op): each
// thread keeps the net bytes of the storages it made and freed (negative when it frees
// another thread's) in its own slot, written only by itself (a relaxed store, a plain move);
// memory_allocated() sums the live slots and what exited threads left (`retired`).
//
// The peak stays exact without a shared counter: a thread's slot caches the other threads'
// sum, and every storage made or freed leaves its thread's mark in `last_writer` (a plain
// store, and a load that stays in cache while one thread allocates). A thread that finds
// another thread's mark has stale knowledge of the others and sums the slots again (under the
// registry's mutex) before its next allocation is compared with the peak. So the peak is exact
// whenever the threads that allocate are synchronised with each other (joined, or handing
// tensors over through a mutex or queue); storages made concurrently on several threads are
// compared with the peak as each thread saw the others, as before.
struct CounterSlot {
  std::atomic<std::int64_t> bytes{0};  // written by the owner thread only
  std::int64_t others = 0;             // the other threads' sum when last summed
  bool stale = true;                   // others must be summed again
  CounterSlot* next = nullptr;         // the registry's list
  CounterSlot* prev = nullptr;
  CounterSlot();
  ~CounterSlot();
};

struct CounterRegistry {
  std::mutex m;
  CounterSlot* head = nullptr;
  std::atomic<std::int64_t> retired{0};  // net bytes of exited threads (and after exit)
  std::atomic<const void*> last_writer{nullptr};
  std::atomic<std::int64_t> peak{0};
};

CounterRegistry& counters() {
  static auto* r = new CounterRegistry;  // never destroyed: storages may outlive statics
  return *r;
}

CounterSlot::CounterSlot() {
  CounterRegistry& r = counters();
  std::lock_guard<std::mutex> lock(r.m);
  next = r.head;
  if (next != nullptr) next->prev = this;
  r.head = this;
}

thread_local bool t_counter_dead = false;

CounterSlot::~CounterSlot() {
  CounterRegistry& r = counters();
  std::lock_guard<std::mutex> lock(r.m);
  r.retired.fetch_add(bytes.load(std::memory_order_relaxed), std::memory_order_relaxed);
  if (prev != nullptr) prev->next = next;
  if (next != nullptr) next->prev = prev;
  if (r.head == this) r.head = next;
  r.last_writer.store(nullptr, std::memory_order_relaxed);  // the others' sums move
  t_counter_dead = true;
}

thread_local CounterSlot t_counter;

// The sum of every live slot but `self` (null: all of them) and of the exited threads. Call
// with the registry's mutex held.
std::int64_t sum_slots(const CounterRegistry& r, const CounterSlot* self) {
  std::int64_t total = r.retired.load(std::memory_order_relaxed);
  for (const CounterSlot* s = r.head; s != nullptr; s = s->next)
    if (s != self) total += s->bytes.load(std::memory_order_relaxed);
  return total;
}

void raise_peak(CounterRegistry& r, std::int64_t now) {
  std::int64_t peak = r.peak.load(std::memory_order_relaxed);
  while (now > peak && !r.peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void count_storage(std::int64_t n) {
  CounterRegistry& r = counters();
  if (t_counter_dead) [[unlikely]] {  // a storage made or freed by a thread_local destructor
    std::lock_guard<std::mutex> lock(r.m);
    r.retired.fetch_add(n, std::memory_order_relaxed);
    r.last_writer.store(nullptr, std::memory_order_relaxed);
    if (n > 0) raise_peak(r, sum_slots(r, nullptr));
    return;
  }
  CounterSlot& c = t_counter;
  const std::int64_t mine = c.bytes.load(std::memory_order_relaxed) + n;
  c.bytes.store(mine, std::memory_order_relaxed);
  if (r.last_writer.load(std::memory_order_relaxed) != &c) [[unlikely]] {
    r.last_writer.store(&c, std::memory_order_relaxed);
    c.stale = true;
  }
  if (n <= 0) return;
  if (c.stale) [[unlikely]] {
    std::lock_guard<std::mutex> lock(r.m);
    c.others = sum_slots(r, &c);
    c.stale = false;
  }
  const std::int64_t now = c.others + mine;
  if (now > r.peak.load(std::memory_order_relaxed)) [[unlikely]]
    raise_peak(r, now);
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

// ---- the small-block pool (storage.hpp: detail::pool_allocate) ----
// Size class of a request: multiples of 64 bytes up to 1 KiB (classes 0..15), then four
// classes per power of two: (2^(b-1), 2^b] splits at 2^(b-1) * (1 + q/4), q = 1..4 (classes
// 16..63, up to 4 MiB). Blocks are 64-byte aligned, so every class size is a multiple of 64.
constexpr std::size_t kPoolMax = std::size_t(4) << 20;
// Under AddressSanitizer nothing is recycled (neither the pool's free lists nor the big-block
// cache): every block goes to the system and back, so that a use after free of a pooled
// tensor, node or storage is reported instead of hidden.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRecycle = false;
#else
constexpr bool kRecycle = true;
#endif
constexpr int kPoolClasses = 16 + 12 * 4;
constexpr std::size_t kPoolCapacity = std::size_t(32) << 20;  // freed bytes kept per thread
constexpr std::uint32_t kPoolMaxPerClass = 256;

int pool_class(std::size_t n) {
  if (n <= 1024) return n == 0 ? 0 : static_cast<int>((n - 1) / 64);
  const int b = std::bit_width(n - 1);  // 2^(b-1) < n <= 2^b, b in 11..22
  const std::size_t quarter = std::size_t(1) << (b - 3);
  const std::size_t q = (n - (std::size_t(1) << (b - 1)) + quarter - 1) / quarter;  // 1..4
  return 16 + (b - 11) * 4 + static_cast<int>(q) - 1;
}

std::size_t pool_class_size(int c) {
  if (c < 16) return static_cast<std::size_t>(c + 1) * 64;
  const int b = (c - 16) / 4 + 11, q = (c - 16) % 4 + 1;
  return (std::size_t(1) << (b - 1)) + static_cast<std::size_t>(q) * (std::size_t(1) << (b - 3));
}

struct FreeBlock {
  FreeBlock* next;
};

// One per thread: an intrusive free list per class. Freed when the thread exits; a block
// released after that (a tensor destroyed by a later thread_local or static destructor) goes
// straight back to the system.
struct ThreadPool {
  FreeBlock* head[kPoolClasses] = {};
  std::uint32_t count[kPoolClasses] = {};
  std::size_t bytes = 0;
  ~ThreadPool();
};
thread_local bool t_pool_dead = false;
thread_local ThreadPool t_pool;

ThreadPool::~ThreadPool() {
  t_pool_dead = true;
  for (FreeBlock*& h : head)
    while (h != nullptr) {
      FreeBlock* next = h->next;
      std::free(h);
      h = next;
    }
}

void* allocate_block(std::size_t rounded) {
  if (rounded < kPoolMax) return detail::pool_allocate(rounded);
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
  if (rounded < kPoolMax) return detail::pool_release(p, rounded);
  if (kRecycle && rounded >= kCacheMinBlock && rounded <= kCacheCapacity) {
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

namespace detail {

void* pool_allocate(std::size_t nbytes) {
  if (nbytes >= kPoolMax || !kRecycle) {
    void* p = std::aligned_alloc(64, (nbytes + 63) / 64 * 64);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  const int c = pool_class(nbytes);
  if (!t_pool_dead) {
    ThreadPool& tp = t_pool;
    if (FreeBlock* b = tp.head[c]) {
      tp.head[c] = b->next;
      --tp.count[c];
      tp.bytes -= pool_class_size(c);
      return b;
    }
  }
  void* p = std::aligned_alloc(64, pool_class_size(c));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void pool_release(void* p, std::size_t nbytes) noexcept {
  if (p == nullptr) return;
  if (nbytes >= kPoolMax || t_pool_dead || !kRecycle) {
    std::free(p);
    return;
  }
  const int c = pool_class(nbytes);
  const std::size_t size = pool_class_size(c);
  ThreadPool& tp = t_pool;
  if (tp.count[c] >= kPoolMaxPerClass || tp.bytes + size > kPoolCapacity) {
    std::free(p);
    return;
  }
  auto* b = static_cast<FreeBlock*>(p);
  b->next = tp.head[c];
  tp.head[c] = b;
  ++tp.count[c];
  tp.bytes += size;
}

// allocate_shared constructs the Storage inside the control block it allocates, whose size
// the allocator grows by `nbytes + 63`: the first 64-byte boundary after the Storage object is
// at most 63 bytes past the control block's end, so the data fits in the block.
std::shared_ptr<Storage> make_storage(std::size_t nbytes) {
  if (nbytes > kInlineStorageMax || nbytes == 0) return make_pooled<Storage>(nbytes);
  return std::allocate_shared<Storage>(PoolAllocatorWithTail<Storage>(nbytes + 63), nbytes,
                                       Storage::InlineData{});
}

}  // namespace detail

std::int64_t memory_allocated() {
  CounterRegistry& r = counters();
  std::lock_guard<std::mutex> lock(r.m);
  return sum_slots(r, nullptr);
}

std::int64_t max_memory_allocated() {
  return counters().peak.load(std::memory_order_relaxed);
}

void reset_peak_memory_stats() {
  CounterRegistry& r = counters();
  std::lock_guard<std::mutex> lock(r.m);
  r.peak.store(sum_slots(r, nullptr), std::memory_order_relaxed);
}

Storage::Storage(std::size_t nbytes) : nbytes_(nbytes) {
  data_ = allocate_block(rounded_size(nbytes));
  if (data_ == nullptr) throw std::bad_alloc();
  count_storage(static_cast<std::int64_t>(nbytes_));
}

Storage::Storage(std::size_t nbytes, InlineData) noexcept : nbytes_(nbytes), inline_(true) {
  const auto end = reinterpret_cast<std::uintptr_t>(this + 1);
  data_ = reinterpret_cast<void*>((end + 63) / 64 * 64);
  count_storage(static_cast<std::int64_t>(nbytes_));
}

Storage::~Storage() {
  if (!inline_) release_block(data_, rounded_size(nbytes_));
  count_storage(-static_cast<std::int64_t>(nbytes_));
}

}  // namespace xgrad
