// Replays the fuzz corpora kept in the repository through the fuzz targets' own code
// (fuzz/fuzz_targets.hpp): tests/data/fuzz/<target>/seeds (valid files, which must load) and
// tests/data/fuzz/<target>/regressions (every input that ever crashed a target or was once
// wrongly accepted, which must load or throw xgrad::Error — nothing else). tools/dev fuzz
// copies each new crashing input into the regressions folder.
#include <filesystem>
#include <fstream>
#include <iterator>

#include "../../fuzz/fuzz_targets.hpp"
#include "test_util.hpp"

using namespace xgrad;
namespace fs = std::filesystem;

namespace {

const fs::path kFuzzData = fs::path(XGRAD_TEST_DATA_DIR) / "fuzz";

std::string bytes_of(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The files of tests/data/fuzz/<target>/<kind>, sorted (none when the folder does not exist).
std::vector<fs::path> inputs(const std::string& target, const std::string& kind) {
  std::vector<fs::path> out;
  const fs::path dir = kFuzzData / target / kind;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

using Target = void (*)(const std::uint8_t*, std::size_t);

// Every seed and regression input through `target`: it returns (having caught xgrad::Error
// itself) or the test fails. Returns how many inputs ran.
std::size_t replay(const std::string& name, Target target) {
  std::size_t n = 0;
  for (const char* kind : {"seeds", "regressions"})
    for (const fs::path& p : inputs(name, kind)) {
      BOOST_TEST_CONTEXT(p.string()) {
        const std::string b = bytes_of(p);
        BOOST_CHECK_NO_THROW(target(reinterpret_cast<const std::uint8_t*>(b.data()), b.size()));
        ++n;
      }
    }
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fuzz_regression)

BOOST_AUTO_TEST_CASE(idx_inputs) {
  BOOST_TEST(replay("idx", fuzz::idx) >= 5u);
  BOOST_TEST(replay("idx_gz", fuzz::idx_gz) >= 3u);
  // The seeds are valid IDX files (plain or gzip).
  for (const fs::path& p : inputs("idx", "seeds")) BOOST_CHECK_NO_THROW(data::read_idx(p));
}

BOOST_AUTO_TEST_CASE(safetensors_inputs) {
  BOOST_TEST(replay("safetensors", fuzz::safetensors) >= 2u);
  for (const fs::path& p : inputs("safetensors", "seeds"))
    BOOST_CHECK(!io::load_safetensors(p.string()).tensors.empty());
}

BOOST_AUTO_TEST_CASE(checkpoint_inputs) {
  BOOST_TEST(replay("checkpoint", fuzz::checkpoint) >= 1u);
  for (const fs::path& p : inputs("checkpoint", "seeds")) {
    fuzz::CheckpointTarget t;
    BOOST_CHECK_NO_THROW(io::load_checkpoint(p.string(), t.model, t.opt,
                                             {.scheduler = &t.sched, .loader = &t.loader}));
  }
}

BOOST_AUTO_TEST_SUITE_END()
