// Process-wide switches that torch has too: thread counts (torch.set_num_threads) and
// flush-denormal. (Grad mode, per thread, is in autograd/grad_mode.hpp; the seed in random.hpp.)
#pragma once

namespace xgrad {

/// Turns flush-to-zero and denormals-are-zero on or off for the calling thread (x86 MXCSR;
/// torch.set_flush_denormal). Adam's moments of units that stop receiving gradient decay into
/// the subnormal range, where every operation costs ~100 cycles: training loops turn this on.
/// Returns false when the CPU has no such mode (then nothing changes).
bool set_flush_denormal(bool on);

/// The number of threads matmul, linear and every other GEMM use: set_num_threads(n) sets it
/// (torch.set_num_threads). xgrad splits a large GEMM into blocks of rows itself and runs
/// each block with single-threaded OpenBLAS (OpenBLAS's own threads are held to one: they
/// spin, and oversubscribe a core that another process keeps busy); the blocks depend on the
/// shape only, so results do not depend on n (docs/performance.md). The default is the thread
/// count OpenBLAS had when xgrad first used it (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, else
/// the number of cores). Throws xgrad::Error for n < 1.
void set_num_threads(int n);
/// The current GEMM thread count.
int get_num_threads();

/// The number of threads conv2d and the pooling ops (ops/pool.hpp) split a batch across:
/// chunks of images (or of N·C planes) go to a small pool of worker threads and the caller,
/// each running single-threaded BLAS. n ≥ 1 sets it; 0 (the default) makes it follow
/// get_num_threads(), the GEMM thread count. Results do not depend on it (the chunks and the
/// order in which partial sums are added are fixed). Throws xgrad::Error for n < 0.
void set_num_batch_threads(int n);
/// The current batch thread count (get_num_threads() unless set_num_batch_threads(n ≥ 1)).
int get_num_batch_threads();

/// The instruction set the hot kernels (optimizer updates, max pooling) run with, chosen once
/// at start-up from what the CPU supports, whatever flags the library was compiled with:
/// "avx2" (AVX2 + FMA) or "default" (the build's baseline). The environment variable
/// XGRAD_CPU_CAPABILITY=default forces the baseline (as ATen's ATEN_CPU_CAPABILITY); results
/// are bit-identical either way.
const char* cpu_capability();

}  // namespace xgrad
