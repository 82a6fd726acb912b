// Run-time kernel dispatch (src/detail/cpu.hpp): the chosen instruction set follows the CPU
// and the XGRAD_CPU_CAPABILITY cap. ctest runs this suite twice, the second time with
// XGRAD_CPU_CAPABILITY=default.
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <string>

#include "xgrad/runtime.hpp"

BOOST_AUTO_TEST_SUITE(cpu_capability)

BOOST_AUTO_TEST_CASE(follows_cpu_and_environment) {
  const char* env = std::getenv("XGRAD_CPU_CAPABILITY");
  const std::string cap = xgrad::cpu_capability();
  if (env != nullptr && std::string(env) == "default") {
    BOOST_TEST(cap == "default");
    return;
  }
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  BOOST_TEST(cap == (avx2 ? "avx2" : "default"));
#else
  BOOST_TEST(cap == "default");
#endif
}

BOOST_AUTO_TEST_CASE(is_chosen_once) {
  const std::string first = xgrad::cpu_capability();
  ::setenv("XGRAD_CPU_CAPABILITY", first == "avx2" ? "default" : "avx2", 1);
  BOOST_TEST(std::string(xgrad::cpu_capability()) == first);
}

BOOST_AUTO_TEST_SUITE_END()
