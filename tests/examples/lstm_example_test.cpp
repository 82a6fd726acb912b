// Runs the built examples/lstm_sine.cpp as a user would and checks that it trains: the
// held-out loss after training is below half the loss before, the output ends with
// "final loss X (initial Y)", runs are reproducible, and bad arguments give exit code 2.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "process_util.hpp"
#include "test_util.hpp"

// The CMake build passes the example's path (tests/CMakeLists.txt); the fallback is a local
// build folder.
#ifndef XGRAD_LSTM_SINE_BIN
#define XGRAD_LSTM_SINE_BIN "/work/main/build-rnn/examples/example_lstm_sine"
#endif

namespace fs = std::filesystem;

namespace {

using xgrad::testing::Run;
using xgrad::testing::slurp;

// Per-process file names: ctest may run the cases of this suite in parallel.
Run run_example(const std::string& args) {
  return xgrad::testing::run_command(std::string(XGRAD_LSTM_SINE_BIN) + " " + args);
}

std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lstm_example)

BOOST_AUTO_TEST_CASE(loss_falls_by_half) {
  BOOST_REQUIRE_MESSAGE(fs::exists(XGRAD_LSTM_SINE_BIN),
                        "example not built: " << XGRAD_LSTM_SINE_BIN);
  Run r = run_example("--steps 150 --print-every 50");
  BOOST_REQUIRE_MESSAGE(r.code == 0, "exit code " << r.code << ", stderr: " << r.err);
  // Progress lines every 50 steps.
  BOOST_TEST(r.out.find("step    50  train loss") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("step   150  train loss") != std::string::npos, r.out);
  double final_loss = -1, initial_loss = -1;
  const std::string last = last_line(r.out);
  BOOST_REQUIRE_MESSAGE(
      std::sscanf(last.c_str(), "final loss %lf (initial %lf)", &final_loss, &initial_loss) == 2,
      "unexpected last line: '" << last << "'");
  BOOST_TEST(initial_loss > 0.0);
  BOOST_TEST(final_loss < 0.5 * initial_loss,
             "final " << final_loss << ", initial " << initial_loss);
}

BOOST_AUTO_TEST_CASE(seeded_runs_repeat) {
  Run a = run_example("--steps 20 --print-every 10 --seed 3");
  Run b = run_example("--steps 20 --print-every 10 --seed 3");
  BOOST_REQUIRE_EQUAL(a.code, 0);
  BOOST_TEST(a.out == b.out);
  Run c = run_example("--steps 20 --print-every 10 --seed 4");
  BOOST_TEST(a.out != c.out);
}

BOOST_AUTO_TEST_CASE(bad_arguments) {
  for (const char* args : {"--steps", "--bogus 1", "--print-every 0", "--lr -1"}) {
    Run r = run_example(args);
    BOOST_TEST(r.code == 2, args << ": exit code " << r.code);
    const bool explained =
        r.err.find("usage") != std::string::npos || r.err.find("must be") != std::string::npos;
    BOOST_TEST(explained, args << ": " << r.err);
  }
}

BOOST_AUTO_TEST_SUITE_END()
