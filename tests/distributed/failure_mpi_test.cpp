// Issue 16, item 4: a rank that dies, throws or hangs in the middle of training makes the job
// end with a non-zero exit code within 30 s and a message naming the rank; nothing hangs.
// Runs mpirun itself (tests/CMakeLists.txt gives the command line) on failure_helper.
#include <chrono>

#include "process_util.hpp"
#include "test_util.hpp"

using xgrad::testing::run_command;

namespace {

struct Outcome {
  xgrad::testing::Run run;
  double seconds;
};

Outcome launch(const std::string& mode) {
  const auto t0 = std::chrono::steady_clock::now();
  // `timeout` is only the safety net of this test: the job must end long before it.
  auto r = run_command(std::string("timeout 60 ") + XGRAD_MPIRUN + " " + XGRAD_FAILURE_HELPER +
                       " " + mode);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  BOOST_TEST_MESSAGE(mode << ": exit " << r.code << " after " << s << " s\n" << r.out << r.err);
  return {r, s};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ddp_failure)

BOOST_AUTO_TEST_CASE(a_killed_rank_ends_the_job_naming_it) {
  const auto o = launch("kill");
  BOOST_TEST(o.run.code != 0);
  BOOST_TEST(o.run.code != 124);  // not ended by the safety net
  BOOST_TEST(o.seconds < 30.0);
  BOOST_TEST((o.run.out + o.run.err).find("rank 1") != std::string::npos, o.run.err);
  BOOST_TEST(o.run.out.find("step 2") != std::string::npos);  // it died mid-run
}

BOOST_AUTO_TEST_CASE(a_throwing_rank_reports_and_ends_the_job) {
  const auto o = launch("throw");
  BOOST_TEST(o.run.code == 1);
  BOOST_TEST(o.seconds < 30.0);
  BOOST_TEST(
      o.run.err.find("rank 1 of 2: failure_helper: rank 1 failed on purpose") != std::string::npos,
      o.run.err);
}

BOOST_AUTO_TEST_CASE(a_hanging_rank_is_named_by_the_timeout) {
  const auto o = launch("hang");
  BOOST_TEST(o.run.code == 1);
  BOOST_TEST(o.seconds < 30.0);
  BOOST_TEST(o.run.err.find("rank 0 of 2:") != std::string::npos, o.run.err);
  BOOST_TEST(o.run.err.find("got no answer within 2 s: rank 1 has stopped") != std::string::npos,
             o.run.err);
}

BOOST_AUTO_TEST_CASE(a_healthy_run_ends_normally) {
  const auto o = launch("none");
  BOOST_TEST(o.run.code == 0, o.run.err);
  BOOST_TEST(o.run.out.find("step 19") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
