// libFuzzer target: see xgrad::fuzz::idx_gz in fuzz_targets.hpp. Run by tools/dev fuzz.
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  xgrad::fuzz::idx_gz(data, size);
  return 0;
}
