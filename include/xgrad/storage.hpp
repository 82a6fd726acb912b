// Storage: the shared, 64-byte-aligned buffer behind one or more tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace xgrad {

/// A contiguous block of bytes, 64-byte aligned, shared by a tensor and all of its views
/// (reshape, transpose, slice, detach). It also carries the version counter that in-place ops
/// bump: views share it, so modifying a view is seen by a node that saved its base.
class Storage {
 public:
  /// Allocates nbytes (uninitialised). Throws std::bad_alloc when memory runs out.
  explicit Storage(std::size_t nbytes);
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
};

}  // namespace xgrad
