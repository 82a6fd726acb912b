// libFuzzer target: see xgrad::fuzz::safetensors in fuzz_targets.hpp. Run by tools/dev fuzz.
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  xgrad::fuzz::safetensors(data, size);
  return 0;
}
