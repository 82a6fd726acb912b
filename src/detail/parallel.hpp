// The thread pool: splits the images of a batch (or the planes of a pooling) across
// get_num_batch_threads() threads for conv_kernels.cpp and pool_kernels.cpp, and large GEMMs
// across get_num_threads() threads (blas.hpp). Not installed.
#pragma once

#include <cstdint>
#include <functional>

namespace xgrad::detail {

/// The number of chunks parallel_for splits [0, n) into: at most 16, each at least
/// min_chunk long (except when n is smaller). Depends on n and min_chunk only.
std::int64_t parallel_chunks(std::int64_t n, std::int64_t min_chunk);

/// Runs f(begin, end, chunk) over the parallel_chunks(n, min_chunk) contiguous chunks of
/// [0, n), each exactly once, on up to get_num_batch_threads() threads (the caller included).
/// The chunks do not depend on the thread count, so per-chunk partial results added up in
/// chunk order give the same numbers with any number of threads. BLAS calls inside f run
/// single-threaded. On nested or concurrent use the chunks run serially on the caller.
void parallel_for_fn(std::int64_t n, std::int64_t min_chunk,
                     const std::function<void(std::int64_t, std::int64_t, std::int64_t)>& f);

/// Runs job(c) for every c in [0, chunks), each exactly once, on up to `threads` threads (the
/// caller included). Chunks are claimed one at a time (the caller from the front, the pool
/// threads from the back, so a core keeps the same part of the range from job to job), so a
/// pool thread that the OS does not schedule (another process busy on its core) takes none:
/// the caller runs them. Serial on the caller when threads <= 1, when called from inside a
/// chunk (nested), while another thread's job holds the pool, or while the pool backs off
/// because recent jobs gained nothing from its threads (a busy machine). Rethrows the first
/// exception a chunk threw.
void parallel_run_fn(int threads, std::int64_t chunks,
                     const std::function<void(std::int64_t)>& job);

/// parallel_run when the pool takes the job: returns true after job(c) ran for every c in
/// [0, chunks) on up to `threads` threads (the caller included). Returns false, running
/// nothing, when parallel_run would run the chunks serially on the caller (threads <= 1,
/// chunks <= 1, nested, the pool busy with another caller's job, or backing off because
/// recent jobs gained nothing from its threads): the caller can then do the whole work in one
/// piece, which is cheaper than its chunks one after another when each chunk repeats a setup (a
/// GEMM's packing of the shared operand). Rethrows the first exception a chunk threw.
bool parallel_try_run_fn(int threads, std::int64_t chunks,
                         const std::function<void(std::int64_t)>& job);

// The entry points callers use: each hands the pool a std::function holding one reference to
// the caller's callable, which fits std::function's inline room (two pointers in libstdc++),
// so a call makes no heap allocation however much the callable captures (a GEMM's block
// lambda captures a dozen references; issue 14 wants no allocation in a training step).
template <class F>
void parallel_for(std::int64_t n, std::int64_t min_chunk, F&& f) {
  parallel_for_fn(n, min_chunk,
                  [&f](std::int64_t b, std::int64_t e, std::int64_t c) { f(b, e, c); });
}
template <class F>
void parallel_run(int threads, std::int64_t chunks, F&& job) {
  parallel_run_fn(threads, chunks, [&job](std::int64_t c) { job(c); });
}
template <class F>
bool parallel_try_run(int threads, std::int64_t chunks, F&& job) {
  return parallel_try_run_fn(threads, chunks, [&job](std::int64_t c) { job(c); });
}

/// What the pool did since the process started: jobs it ran on several threads, jobs it
/// handed back to the caller to run serially because it was backing off (not counting jobs
/// with one thread, nested or concurrent ones), and the back-offs it started because recent
/// jobs gained nothing from the threads (a busy machine). For tests and benchmarks.
struct PoolStats {
  std::int64_t parallel_jobs = 0, serial_jobs = 0, backoffs = 0;
};
PoolStats pool_stats();

/// True on a thread while it runs a chunk of parallel_for / parallel_run (nested calls run
/// serially).
bool in_parallel_region();

}  // namespace xgrad::detail
