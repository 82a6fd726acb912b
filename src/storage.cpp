#include "xgrad/storage.hpp"

#include <cstdlib>
#include <new>

namespace xgrad {

Storage::Storage(std::size_t nbytes) : nbytes_(nbytes) {
  // aligned_alloc needs a size that is a multiple of the alignment.
  std::size_t rounded = (nbytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  data_ = std::aligned_alloc(64, rounded);
  if (data_ == nullptr) throw std::bad_alloc();
}

Storage::~Storage() {
  std::free(data_);
}

}  // namespace xgrad
