// kill -9 during checkpoint saves: every checkpoint on disk stays loadable (the rename is
// atomic), and the temporary files the killed saves leave behind are removed by the next save
// to the same path — only those: other paths' temporaries and other names stay.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/io/checkpoint.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/optim/adam.hpp"

using namespace xgrad;
using xgrad::testing::list_dir;
using xgrad::testing::TempDir;
using xgrad::testing::values_of;
namespace fs = std::filesystem;

namespace {

// The temporary files of `path` in its folder: "<name>.tmp." and six more characters.
int temps_of(const fs::path& path) {
  int n = 0;
  const std::string prefix = path.filename().string() + ".tmp.";
  for (const auto& name : list_dir(path.parent_path()))
    n += name.size() == prefix.size() + 6 && name.rfind(prefix, 0) == 0;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(kill_save)

BOOST_AUTO_TEST_CASE(thirty_kills_during_saves_leave_no_stale_temporary_files) {
  TempDir t;
  const fs::path dir = t.path;
  const fs::path ckpt = dir / "ckpt.safetensors";
  // Names the cleanup must leave alone: another path's temporary, other patterns.
  const std::vector<std::string> keep = {"ckpt.safetensors.tmp.notes.txt",
                                         "ckpt.safetensors.tmp.ab", "other.safetensors.tmp.Ab3xYz"};
  for (const auto& k : keep) std::ofstream(dir / k) << "keep\n";

  manual_seed(3);
  nn::MLP model({784, 1024, 10});  // 3.2 MB of parameters
  optim::Adam opt(model.parameters(), optim::AdamOptions(1e-3));
  // A first checkpoint: from here on one is always on disk, the old or a new one, and loads.
  io::save_checkpoint(ckpt.string(), model, opt, {.rng = false});
  int kills_leaving_a_temp = 0;
  for (int i = 0; i < 30; ++i) {
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        for (;;) io::save_checkpoint(ckpt.string(), model, opt, {.rng = false});
      } catch (...) {
      }
      ::_exit(1);
    }
    // Kill at varied times: once a save has begun writing its temporary file, after 0 to 20 ms.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (temps_of(ckpt) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    std::this_thread::sleep_for(std::chrono::microseconds(2000 * (i % 11)));
    BOOST_REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
    BOOST_TEST(WIFSIGNALED(status));
    const int temps = temps_of(ckpt);
    kills_leaving_a_temp += temps > 0;
    // Each save removed the stale temporaries before it: at most the killed one is left.
    BOOST_TEST(temps <= 1, "after kill " << i << ": " << temps << " temporary files");
    nn::MLP other({784, 1024, 10});
    optim::Adam other_opt(other.parameters(), optim::AdamOptions(1e-3));
    BOOST_CHECK_NO_THROW(io::load_checkpoint(ckpt.string(), other, other_opt, {.rng = false}));
  }
  BOOST_TEST_MESSAGE(kills_leaving_a_temp << " of 30 kills left a temporary file");
  BOOST_TEST(kills_leaving_a_temp > 0);  // else the test did not test the cleanup

  io::save_checkpoint(ckpt.string(), model, opt, {.rng = false});
  BOOST_TEST(temps_of(ckpt) == 0);
  std::vector<std::string> want = keep;
  want.push_back("ckpt.safetensors");
  std::sort(want.begin(), want.end());
  BOOST_TEST(list_dir(dir) == want, boost::test_tools::per_element());
  nn::MLP other({784, 1024, 10});
  optim::Adam other_opt(other.parameters(), optim::AdamOptions(1e-3));
  io::load_checkpoint(ckpt.string(), other, other_opt, {.rng = false});
  BOOST_TEST(values_of(other.named_parameters()[0].second) ==
                 values_of(model.named_parameters()[0].second),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
