// float32 tanh runs libmvec's vector tanhf (src/detail/vec_math.hpp, detail::vtanh) where the
// C library has it: its results must stay within 2 ulp of glibc's scalar tanhf (std::tanh) over
// the whole float range, keep the specials (±0 with its sign, ±inf -> ±1, NaN) and keep the
// backward (1 - y², from the saved output) consistent with the values it returns. ctest also
// runs this suite with XGRAD_CPU_CAPABILITY=default (the SSE2 variant, libmvec's 4-lane
// version).
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "test_util.hpp"

using namespace xgrad;

namespace {

// Position of a float on the ordered integer line (-0 and +0 both at 0): the difference of two
// positions is the distance in ulp.
std::int64_t ordered(float f) {
  std::int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i < 0 ? -static_cast<std::int64_t>(i & 0x7fffffff) : i;
}

float from_bits(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// xgrad::tanh of `in` (one float32 tensor), element by element.
std::vector<float> xgrad_tanh(const std::vector<float>& in) {
  Tensor x = empty({static_cast<std::int64_t>(in.size())}, float32);
  std::memcpy(x.data_ptr<float>(), in.data(), in.size() * sizeof(float));
  Tensor y = tanh(x);
  const float* p = y.data_ptr<float>();
  return std::vector<float>(p, p + in.size());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vec_tanh)

// Every 61st bit pattern from +0 to +inf and from -0 to -inf (2 × 35 million floats: every
// binade, denormals and tiny |x| where tanh x = x, the region near 9 where tanhf reaches 1, and
// large |x|), plus every denormal below 2^-140 with its negation, in chunks of 2^20.
BOOST_AUTO_TEST_CASE(within_2_ulp_of_std_tanh_over_the_float_range) {
  constexpr std::int64_t kMaxUlp = 2;
  std::int64_t worst = 0;
  float worst_x = 0;
  std::int64_t checked = 0, nan_mismatch = 0;
  std::vector<float> in;
  in.reserve(1 << 20);
  auto flush = [&] {
    const std::vector<float> got = xgrad_tanh(in);
    for (std::size_t i = 0; i < in.size(); ++i) {
      const float want = std::tanh(in[i]);
      if (std::isnan(want) || std::isnan(got[i])) {
        nan_mismatch += std::isnan(want) != std::isnan(got[i]);
        continue;
      }
      const std::int64_t d = std::abs(ordered(got[i]) - ordered(want));
      if (d > worst) {
        worst = d;
        worst_x = in[i];
      }
      ++checked;
    }
    in.clear();
  };
  for (const std::uint32_t sign : {0u, 0x80000000u}) {
    for (std::uint32_t b = 0; b <= 0x7f800000u; b += 61) {
      in.push_back(from_bits(sign | b));
      if (in.size() == in.capacity()) flush();
    }
    for (std::uint32_t b = 0; b < (1u << 9); ++b) in.push_back(from_bits(sign | b));
  }
  flush();
  BOOST_TEST(checked > 70'000'000);
  BOOST_TEST(nan_mismatch == 0);
  BOOST_TEST_MESSAGE("vec_tanh: worst " << worst << " ulp at " << worst_x);
  BOOST_TEST(worst <= kMaxUlp, "worst " << worst << " ulp at x = " << worst_x);
}

// The specials at every position of a vector (body and remainder of the dispatched loop).
BOOST_AUTO_TEST_CASE(specials_keep_their_values_and_signs) {
  const float inf = std::numeric_limits<float>::infinity();
  const float denorm = std::numeric_limits<float>::denorm_min();
  const std::vector<float> specials{0.0f,   -0.0f,   inf,   -inf,   std::nanf(""), denorm, -denorm,
                                    1e-30f, -1e-30f, 20.0f, -20.0f, 1e30f,         -1e30f};
  for (std::size_t shift = 0; shift < 17; ++shift) {
    std::vector<float> in(shift, 0.25f);
    in.insert(in.end(), specials.begin(), specials.end());
    const std::vector<float> got = xgrad_tanh(in);
    BOOST_TEST_CONTEXT("shift " << shift) {
      const float* g = got.data() + shift;
      BOOST_TEST((g[0] == 0.0f && !std::signbit(g[0])));
      BOOST_TEST((g[1] == 0.0f && std::signbit(g[1])));
      BOOST_TEST(g[2] == 1.0f);
      BOOST_TEST(g[3] == -1.0f);
      BOOST_TEST(std::isnan(g[4]));
      BOOST_TEST(g[5] == denorm);  // tanh x = x below 2^-12 to the float's precision
      BOOST_TEST(g[6] == -denorm);
      BOOST_TEST(g[7] == 1e-30f);
      BOOST_TEST(g[8] == -1e-30f);
      BOOST_TEST(g[9] == 1.0f);
      BOOST_TEST(g[10] == -1.0f);
      BOOST_TEST(g[11] == 1.0f);
      BOOST_TEST(g[12] == -1.0f);
      for (std::size_t i = 0; i < shift; ++i) BOOST_TEST(got[i] == std::tanh(0.25f));
    }
  }
}

// The gradient is g·(1 - y²) of the y the forward returned, first and second order, for a
// vector long enough to run the vector calls.
BOOST_AUTO_TEST_CASE(backward_uses_the_vector_forward_values) {
  manual_seed(3);
  Tensor x = uniform({37}, -4, 4, float32).requires_grad_();
  Tensor y = tanh(x);
  auto g = grad({sum(y)}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true);
  const float* py = y.data_ptr<float>();
  const float* pg = g[0].data_ptr<float>();
  const float* px = x.data_ptr<float>();
  for (int i = 0; i < 37; ++i) {
    BOOST_TEST(pg[i] == 1.0f - py[i] * py[i]);
    BOOST_TEST(std::abs(py[i] - std::tanh(px[i])) <= 2e-7f);
  }
  // d/dx sum(1 - y²) = -2 y (1 - y²)
  auto gg = grad({sum(g[0])}, {x});
  const float* pgg = gg[0].data_ptr<float>();
  for (int i = 0; i < 37; ++i) {
    const float want = -2.0f * py[i] * (1.0f - py[i] * py[i]);
    BOOST_TEST(std::abs(pgg[i] - want) <= 1e-6f);
  }
}

BOOST_AUTO_TEST_SUITE_END()
