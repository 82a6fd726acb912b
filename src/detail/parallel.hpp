// The batch thread pool: splits the images of a batch (or the planes of a pooling) across
// get_num_batch_threads() threads for conv_kernels.cpp and pool_kernels.cpp. Not installed.
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
void parallel_for(std::int64_t n, std::int64_t min_chunk,
                  const std::function<void(std::int64_t, std::int64_t, std::int64_t)>& f);

}  // namespace xgrad::detail
