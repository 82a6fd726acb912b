// The batch thread pool behind detail::parallel_for (see parallel.hpp and docs/cnn.md).
#include "detail/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
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
// Machines are shared: when another process keeps a worker's core busy, the OS can stop the
// worker in the middle of a chunk for a whole time slice (milliseconds) while the caller,
// done with its own chunks, waits for it. The caller measures this: a job whose wait for the
// workers' last chunks exceeds twice the caller's own work (and 50 us) makes the pool back
// off, running the next jobs serially on the caller (64 jobs, doubling with each further
// slow job up to 8192, halved by each job without such a wait). So more threads cost at most
// a few probing jobs on a busy machine, never a time slice per job.
class ThreadPool {
 public:
  static ThreadPool& instance() {
    static ThreadPool pool;
    return pool;
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
    if (skip_ > 0) {  // backing off (see above): the caller runs this job alone
      --skip_;
      return false;
    }
    grow(workers);
    std::uint64_t gen;
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &job;
      chunks_ = n;
      active_ = workers;
      error_ = nullptr;
      done_.store(0, std::memory_order_relaxed);
      gen = generation_.load(std::memory_order_relaxed) + 1;
      next_.store(gen << 32, std::memory_order_relaxed);
      generation_.store(gen, std::memory_order_release);
    }
    wake_.notify_all();
    const auto t0 = std::chrono::steady_clock::now();
    work(gen, job, n);
    const auto t1 = std::chrono::steady_clock::now();
    // Wait until every claimed chunk has finished.
    const auto all_done = [&] { return done_.load(std::memory_order_acquire) == n; };
    if (!all_done()) {
      if (!spin_until(all_done, 50)) {
        std::unique_lock<std::mutex> lock(mu_);
        finished_.wait(lock, all_done);
      }
      const auto waited = std::chrono::steady_clock::now() - t1;
      if (waited > 2 * (t1 - t0) + std::chrono::microseconds(50)) {
        backoff_ = std::clamp(2 * backoff_, 64, 8192);
        skip_ = backoff_;
      } else {
        backoff_ /= 2;
      }
    } else {
      backoff_ /= 2;
    }
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

  // Claims and runs chunks of generation `gen` until none is left (or the job moved on).
  void work(std::uint64_t gen, const std::function<void(std::int64_t)>& job, std::int64_t n) {
    for (;;) {
      std::uint64_t v = next_.load(std::memory_order_relaxed);
      std::int64_t c;
      do {
        if ((v >> 32) != (gen & 0xffffffffu)) return;
        c = static_cast<std::int64_t>(v & 0xffffffffu);
        if (c >= n) return;
      } while (!next_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel));
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

  std::mutex run_mu_;  // one job at a time
  int backoff_ = 0;    // the length of the current back-off (under run_mu_)
  int skip_ = 0;       // jobs still to run serially (under run_mu_)
  std::mutex mu_;
  std::condition_variable wake_, finished_;
  std::vector<std::thread> threads_;
  const std::function<void(std::int64_t)>* job_ = nullptr;
  std::int64_t chunks_ = 0;
  int active_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::uint64_t> next_{0};  // generation << 32 | next unclaimed chunk
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

bool in_parallel_region() {
  return t_in_region;
}

}  // namespace detail

}  // namespace xgrad
