// Storage: the shared, 64-byte-aligned buffer behind one or more tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace xgrad {

/// A contiguous block of bytes, 64-byte aligned, shared by a tensor and all of its views
/// (reshape, transpose, slice, detach). It also carries the version counter that in-place ops
/// bump: views share it, so modifying a view is seen by a node that saved its base.
class Storage {
 public:
  /// Allocates nbytes (uninitialised). Throws std::bad_alloc when memory runs out.
  explicit Storage(std::size_t nbytes);
  /// For detail::make_storage only: the data lives in the same block as this object, from the
  /// first 64-byte boundary after it (the block has room for it). Never throws.
  struct InlineData {};
  Storage(std::size_t nbytes, InlineData) noexcept;
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }

  /// Version counter: incremented by every in-place write (add_, mul_, zero_, copy_, ...).
  std::uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
  std::uint64_t version_ = 0;
  bool inline_ = false;  // data_ is inside this object's block: nothing to free
};

/// Bytes currently held by tensor storages in the whole process: the sum of nbytes() over every
/// live Storage (the size asked for, not the allocator's rounding), so a tensor of n float32
/// elements counts exactly 4n bytes, shared by all its views. The CPU counterpart of
/// torch.cuda.memory_allocated(). Counted per thread on every Storage construction and
/// destruction (no locked instruction) and summed here: exact once the threads that allocate
/// have been joined or synchronised with, and cheap enough to be always on. Never throws.
std::int64_t memory_allocated();
/// The highest value memory_allocated() has reached since the start of the process or the last
/// reset_peak_memory_stats() (torch.cuda.max_memory_allocated()). A peak reached by storages
/// allocated concurrently on several threads is counted as each allocation saw it. Never
/// throws.
std::int64_t max_memory_allocated();
/// Sets the peak to the current memory_allocated(), so that max_memory_allocated() then gives
/// the peak of what follows (torch.cuda.reset_peak_memory_stats()). Never throws.
void reset_peak_memory_stats();

namespace detail {

/// The small-block pool behind storages, tensor handles and graph nodes: a block of `nbytes`,
/// 64-byte aligned, taken from the calling thread's free list of its size class when one is
/// there, else from the system. Size classes: multiples of 64 bytes up to 1 KiB, then four per
/// power of two (at most 25 % rounding) below 4 MiB; larger blocks go to the big-block cache
/// (storage.cpp). A thread keeps at most 32 MiB of freed blocks (beyond that they go back to
/// the system) and frees them when it exits. A block may be released by another thread than
/// the one that allocated it (it joins the releasing thread's lists). This is what makes a
/// steady-state op or training step cost no system allocation (issue 14: DyNet-style pooled
/// memory). Throws std::bad_alloc when the system has no memory left.
void* pool_allocate(std::size_t nbytes);
/// Gives back a block from pool_allocate of the same `nbytes`. Never throws.
void pool_release(void* p, std::size_t nbytes) noexcept;

/// A standard allocator over pool_allocate, for std::allocate_shared of the objects made per
/// op (tensor handles, storages, nodes): their control block and object come from the pool.
template <class T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  T* allocate(std::size_t n) { return static_cast<T*>(pool_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { pool_release(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const PoolAllocator<U>&) const noexcept {
    return true;
  }
};

/// std::make_shared through the pool.
template <class T, class... Args>
std::shared_ptr<T> make_pooled(Args&&... args) {
  return std::allocate_shared<T>(PoolAllocator<T>(), std::forward<Args>(args)...);
}

/// PoolAllocator with `extra` bytes after every object it allocates: make_storage's block
/// holds the shared_ptr control block, the Storage (constructed last in it) and the data.
template <class T>
struct PoolAllocatorWithTail {
  using value_type = T;
  std::size_t extra = 0;
  explicit PoolAllocatorWithTail(std::size_t e) noexcept : extra(e) {}
  template <class U>
  PoolAllocatorWithTail(const PoolAllocatorWithTail<U>& o) noexcept  // NOLINT
      : extra(o.extra) {}
  T* allocate(std::size_t n) { return static_cast<T*>(pool_allocate(n * sizeof(T) + extra)); }
  void deallocate(T* p, std::size_t n) noexcept { pool_release(p, n * sizeof(T) + extra); }
  template <class U>
  bool operator==(const PoolAllocatorWithTail<U>& o) const noexcept {
    return extra == o.extra;
  }
};

/// Storages of at most this many bytes keep their data in the block of their control block
/// (make_storage): one pool block per storage instead of two.
inline constexpr std::size_t kInlineStorageMax = 512;

/// A Storage of nbytes (uninitialised) behind a shared_ptr, from the pool; small ones (up to
/// kInlineStorageMax) in one block with their data. Throws std::bad_alloc when memory runs
/// out.
std::shared_ptr<Storage> make_storage(std::size_t nbytes);

}  // namespace detail

}  // namespace xgrad
