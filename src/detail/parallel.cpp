// The batch thread pool behind detail::parallel_for (see parallel.hpp and docs/cnn.md).
#include "detail/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "xgrad/runtime.hpp"

namespace xgrad {

namespace detail {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins on `done()` for up to `us` microseconds; returns whether it became true. Past the
// first few microseconds it yields the core at every check, so that a thread of this process
// (or another process) that shares the core runs instead of waiting for the spin to end.
template <class F>
bool spin_until(F done, int us) {
  const auto start = std::chrono::steady_clock::now();
  const auto polite = start + std::chrono::microseconds(std::min(us, 5));
  const auto until = start + std::chrono::microseconds(us);
  bool yielding = false;
  for (int i = 0;; ++i) {
    if (done()) return true;
    if (yielding) {
      std::this_thread::yield();
    } else {
      cpu_relax();
    }
    if ((i & 15) == 15) {
      const auto now = std::chrono::steady_clock::now();
      if (now > until) return false;
      yielding = now > polite;
    }
  }
}

thread_local bool t_in_region = false;  // this thread runs a chunk

// Marks the calling thread as running a chunk while alive.
struct RegionMark {
  bool saved = t_in_region;
  RegionMark() { t_in_region = true; }
  ~RegionMark() { t_in_region = saved; }
  RegionMark(const RegionMark&) = delete;
  RegionMark& operator=(const RegionMark&) = delete;
};

// A fixed set of worker threads sharing one job at a time: a function over chunk indices
// [0, n). The caller and the workers claim chunks from a shared counter, so a worker that the
// OS has not scheduled yet (another process on its core) costs nothing: the caller takes its
// chunks. Idle workers spin for a short while, yielding the core (the next GEMM or conv/pool
// call of a training step comes within microseconds), then sleep on a condition variable.
//
// Machines are shared. When another process keeps a worker's core busy, the worker either
// runs no chunk (the caller does them all, one after another: the pool only cost the hand-off),
// or the OS stops it in the middle of a chunk for a whole time slice (milliseconds) while the
// caller, done with its own chunks, waits for it; a worker moved onto the caller's core takes
// its time slices from the caller. So the caller measures every job: how long it took against
// how long it would have taken alone (judge()). When recent jobs gained nothing, the pool backs
// off for a while (the next jobs run serially on the caller, with no hand-off at all), then
// probes again, backing off for longer each time the probe fails. More threads then cost a few
// probing jobs per back-off on a busy machine, and never lose to one thread for long.
class ThreadPool {
 public:
  static ThreadPool& instance() {
    static ThreadPool pool;
    return pool;
  }

  PoolStats stats() {
    std::lock_guard<std::mutex> lock(run_mu_);
    return stats_;
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // Runs job(c) for every chunk c in [0, n) on the caller and up to `workers` pool threads.
  // Returns false (running nothing) when the pool is busy with another caller's job.
  bool run(int workers, std::int64_t n, const std::function<void(std::int64_t)>& job) {
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    const auto start = std::chrono::steady_clock::now();
    if (start < serial_until_) {  // backing off (see above)
      ++stats_.serial_jobs;
      return false;
    }
    ++stats_.parallel_jobs;
    grow(workers);
    std::uint64_t gen;
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &job;
      chunks_ = n;
      active_ = workers;
      error_ = nullptr;
      done_.store(0, std::memory_order_relaxed);
      front_.store(0, std::memory_order_relaxed);
      back_.store(n, std::memory_order_relaxed);
      gen = generation_.load(std::memory_order_relaxed) + 1;
      next_.store(gen << 32, std::memory_order_relaxed);
      generation_.store(gen, std::memory_order_release);
    }
    wake_.notify_all();
    const double cpu0 = thread_cpu_seconds();
    const std::int64_t own = work(gen, job, n, true);
    const double cpu1 = thread_cpu_seconds();
    // Wait until every claimed chunk has finished.
    const auto all_done = [&] { return done_.load(std::memory_order_acquire) == n; };
    if (!all_done() && !spin_until(all_done, 50)) {
      std::unique_lock<std::mutex> lock(mu_);
      finished_.wait(lock, all_done);
    }
    const auto end = std::chrono::steady_clock::now();
    if (own > 0)
      judge(std::chrono::duration<double>(end - start).count(),
            (cpu1 - cpu0) * static_cast<double>(n) / static_cast<double>(own), end);
    std::exception_ptr err;
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = nullptr;
      err = error_;
    }
    if (err) std::rethrow_exception(err);
    return true;
  }

 private:
  ThreadPool() = default;

  void grow(int workers) {
    while (static_cast<int>(threads_.size()) < workers) {
      const int id = static_cast<int>(threads_.size()) + 1;
      // A new worker waits for the generation after the current one, whenever it starts.
      const std::uint64_t seen = generation_.load(std::memory_order_acquire);
      threads_.emplace_back([this, id, seen] { loop(id, seen); });
    }
  }

  // Claims and runs chunks of generation `gen` until none is left (or the job moved on);
  // returns how many it ran. The caller takes chunks from the front, the workers from the
  // back: a thread then runs the same part of a job's range from one job to the next (the
  // same rows of a weight gradient's GEMM, the same elements of the optimizer's update that
  // reads them), so that part stays in that core's cache.
  std::int64_t work(std::uint64_t gen, const std::function<void(std::int64_t)>& job, std::int64_t n,
                    bool caller = false) {
    for (std::int64_t ran = 0;; ++ran) {
      std::uint64_t v = next_.load(std::memory_order_relaxed);
      do {  // claim one of the n chunks of this generation
        if ((v >> 32) != (gen & 0xffffffffu)) return ran;
        if (static_cast<std::int64_t>(v & 0xffffffffu) >= n) return ran;
      } while (!next_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel));
      // At most n claims succeed, so the front and the back never overlap.
      const std::int64_t c = caller ? front_.fetch_add(1, std::memory_order_relaxed)
                                    : back_.fetch_sub(1, std::memory_order_relaxed) - 1;
      try {
        RegionMark mark;
        job(c);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
      }
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
        std::lock_guard<std::mutex> lock(mu_);  // pairs with the caller's predicate check
        finished_.notify_all();
      }
    }
  }

  void loop(int id, std::uint64_t seen) {
    for (;;) {
      const auto changed = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(changed, 50)) {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, changed);
      }
      const std::function<void(std::int64_t)>* job;
      std::int64_t n;
      int active;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
        seen = generation_.load(std::memory_order_acquire);
        job = job_;
        n = chunks_;
        active = active_;
      }
      // A claimed chunk keeps the caller (and so *job) waiting: job stays valid while used.
      if (job != nullptr && id <= active) work(seen, *job, n);
    }
  }

  // The caller's CPU time in seconds (its own chunks, without the time it was descheduled).
  static double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }

  // Weighs one job: it took `wall` seconds; the caller alone would have taken `serial` (its
  // CPU time per chunk, which leaves out the time it was descheduled, times the chunks). Both
  // are averaged over the last ~8 jobs, and when the mean wall time reaches kNoGain of the
  // mean serial time (the threads saved less than 5 %: the workers' cores are busy, or they
  // share the caller's) the pool backs off: `period_` of serial jobs, doubling with each
  // back-off (1 ms to 0.5 s) until 256 jobs in a row stay under, which sets it back to 1 ms.
  // A probe after a back-off starts from kProbe, so a few jobs without gain end it. Means of
  // times, not of each job's ratio: a small job the caller ran alone because the worker woke
  // too late loses a few microseconds, which one large job's gain outweighs; averaged as
  // ratios, runs of such jobs stopped the threads of a CNN step whose convolutions gained.
  void judge(double wall, double serial, std::chrono::steady_clock::time_point now) {
    if (serial_ == 0) {  // the first job: start as a probe does
      serial_ = serial;
      wall_ = kProbe * serial;
    }
    wall_ += (wall - wall_) * 0.125;
    serial_ += (serial - serial_) * 0.125;
    if (wall_ >= kNoGain * serial_) {
      serial_until_ = now + period_;
      ++stats_.backoffs;
      period_ = std::min(period_ * 2, std::chrono::microseconds(512000));
      wall_ = kProbe * serial_;
      good_jobs_ = 0;
    } else if (++good_jobs_ == 256) {
      period_ = std::chrono::microseconds(1000);
    }
  }

  static constexpr double kNoGain = 0.95, kProbe = 0.8;
  double wall_ = 0, serial_ = 0;  // running means of the jobs' times, seconds (under run_mu_)
  int good_jobs_ = 0;             // jobs since the last back-off (under run_mu_)
  std::chrono::microseconds period_{1000};                // the next back-off's length
  std::chrono::steady_clock::time_point serial_until_{};  // the current back-off's end
  PoolStats stats_;                                       // (under run_mu_)
  std::mutex run_mu_;                                     // one job at a time
  std::mutex mu_;
  std::condition_variable wake_, finished_;
  std::vector<std::thread> threads_;
  const std::function<void(std::int64_t)>* job_ = nullptr;
  std::int64_t chunks_ = 0;
  int active_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::uint64_t> next_{0};  // generation << 32 | chunks claimed
  std::atomic<std::int64_t> front_{0};  // the caller's next chunk
  std::atomic<std::int64_t> back_{0};   // one past the workers' next chunk
  std::atomic<std::int64_t> done_{0};
};

}  // namespace

std::int64_t parallel_chunks(std::int64_t n, std::int64_t min_chunk) {
  if (n <= 0) return 0;
  const std::int64_t size = std::max<std::int64_t>({1, min_chunk, (n + 15) / 16});
  return (n + size - 1) / size;
}

void parallel_for_fn(std::int64_t n, std::int64_t min_chunk,
                     const std::function<void(std::int64_t, std::int64_t, std::int64_t)>& f) {
  const std::int64_t chunks = parallel_chunks(n, min_chunk);
  if (chunks == 0) return;
  const std::int64_t size = (n + chunks - 1) / chunks;
  const auto run_chunk = [&](std::int64_t c) { f(c * size, std::min(n, (c + 1) * size), c); };
  parallel_run(get_num_batch_threads(), chunks, run_chunk);  // by reference: no allocation
}

bool parallel_try_run_fn(int threads, std::int64_t chunks,
                         const std::function<void(std::int64_t)>& job) {
  const int t = static_cast<int>(std::min<std::int64_t>({threads, chunks, 64}));
  return t > 1 && !t_in_region && ThreadPool::instance().run(t - 1, chunks, job);
}

void parallel_run_fn(int threads, std::int64_t chunks,
                     const std::function<void(std::int64_t)>& job) {
  if (parallel_try_run_fn(threads, chunks, job)) return;
  for (std::int64_t c = 0; c < chunks; ++c) job(c);
}

PoolStats pool_stats() {
  return ThreadPool::instance().stats();
}

bool in_parallel_region() {
  return t_in_region;
}

}  // namespace detail

}  // namespace xgrad
