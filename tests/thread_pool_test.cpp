// The batch thread pool (src/detail/parallel.cpp, internal): every chunk runs exactly once
// whatever the thread count, a chunk's exception reaches the caller, and a pool whose threads
// cannot run in parallel (the whole process confined to one CPU, as on a machine whose other
// core is busy) stops handing jobs to its workers.
#include <sched.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "detail/parallel.hpp"

namespace {

// About 20 microseconds of arithmetic that the compiler cannot drop.
double busy_work(std::int64_t seed) {
  double x = static_cast<double>(seed % 7) + 0.5;
  for (int i = 0; i < 20000; ++i) x = std::sqrt(x * 1.0000001 + 1.0);
  return x;
}

// Confines every thread of this process (the caller and any pool workers already started) to
// the first CPU the process may use; returns false when that is not possible.
bool confine_to_one_cpu() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return false;
  int first = -1;
  for (int c = 0; c < CPU_SETSIZE && first < 0; ++c)
    if (CPU_ISSET(c, &allowed)) first = c;
  if (first < 0) return false;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  bool ok = true;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    const pid_t tid = static_cast<pid_t>(std::stol(task.path().filename().string()));
    ok = sched_setaffinity(tid, sizeof one, &one) == 0 && ok;
  }
  return ok;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(thread_pool)

// Chunks are claimed from both ends (the caller from the front, the workers from the back):
// each of [0, chunks) still runs exactly once, for any thread and chunk count.
BOOST_AUTO_TEST_CASE(every_chunk_runs_exactly_once) {
  for (int threads : {1, 2, 3, 5}) {
    for (std::int64_t chunks : {1, 2, 3, 7, 16, 64}) {
      std::vector<std::atomic<int>> runs(static_cast<std::size_t>(chunks));
      xgrad::detail::parallel_run(threads, chunks, [&](std::int64_t c) {
        busy_work(c);
        runs[static_cast<std::size_t>(c)].fetch_add(1);
      });
      for (std::int64_t c = 0; c < chunks; ++c)
        BOOST_TEST(runs[static_cast<std::size_t>(c)].load() == 1,
                   "threads " << threads << ", chunks " << chunks << ", chunk " << c);
    }
  }
}

// The first exception a chunk throws reaches the caller, after the other chunks finished; the
// pool runs the next job normally.
BOOST_AUTO_TEST_CASE(a_chunk_exception_reaches_the_caller) {
  std::atomic<int> ran{0};
  BOOST_CHECK_THROW(xgrad::detail::parallel_run(2, 8,
                                                [&](std::int64_t c) {
                                                  ran.fetch_add(1);
                                                  if (c == 5) throw std::runtime_error("chunk 5");
                                                }),
                    std::runtime_error);
  BOOST_TEST(ran.load() == 8);
  std::atomic<int> again{0};
  xgrad::detail::parallel_run(2, 8, [&](std::int64_t) { again.fetch_add(1); });
  BOOST_TEST(again.load() == 8);
}

// With every thread on one CPU two threads cannot beat one: each job takes as long as the
// caller alone would have (or longer, when the worker takes the CPU from the caller). The
// pool must see that and back off, running most jobs serially on the caller, while every job
// still runs every chunk once.
BOOST_AUTO_TEST_CASE(backs_off_when_the_threads_cannot_run_in_parallel) {
  xgrad::detail::parallel_run(2, 2, [](std::int64_t) {});  // start the worker
  if (!confine_to_one_cpu()) {
    BOOST_TEST_MESSAGE("sched_setaffinity is not permitted here: nothing to check");
    return;
  }
  const xgrad::detail::PoolStats before = xgrad::detail::pool_stats();
  std::atomic<std::int64_t> chunks_run{0};
  double sink = 0;
  constexpr int kJobs = 1500;
  for (int j = 0; j < kJobs; ++j) {
    std::vector<double> part(4);
    xgrad::detail::parallel_run(2, 4, [&](std::int64_t c) {
      part[static_cast<std::size_t>(c)] = busy_work(j + c);
      chunks_run.fetch_add(1);
    });
    for (double p : part) sink += p;
  }
  BOOST_TEST(std::isfinite(sink));
  BOOST_TEST(chunks_run.load() == 4 * kJobs);
  const xgrad::detail::PoolStats after = xgrad::detail::pool_stats();
  const std::int64_t parallel = after.parallel_jobs - before.parallel_jobs;
  const std::int64_t serial = after.serial_jobs - before.serial_jobs;
  BOOST_TEST(parallel + serial == kJobs);
  BOOST_TEST(after.backoffs - before.backoffs >= 3);
  BOOST_TEST(serial > 4 * parallel, "serial " << serial << ", parallel " << parallel);
}

BOOST_AUTO_TEST_SUITE_END()
