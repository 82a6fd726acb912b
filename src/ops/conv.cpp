// conv2d through im2col + GEMM (Chellapilla, Puri & Simard 2006), and the small thread pool
// that splits a batch's images across get_num_batch_threads() threads (also used by pool.cpp).
//
// Kernel design (see docs/cnn.md): every loop walks contiguous memory. im2col and col2im
// work one kernel tap (c, i, j) at a time; for the common stride-1 "same width" case a tap is
// one contiguous shifted block copy of the input plane plus a few zeroed border columns, and
// otherwise one short contiguous (or strided, for stride > 1) copy per output row, with the
// valid column range computed once per tap — no per-element index arithmetic or bounds tests.
// The im2col buffer is per thread and reused across calls, so it stays in L2 while the GEMM
// reads it. Each image's GEMM writes straight into the NCHW output (no transposes).
#include "xgrad/ops/conv.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/ops/linalg.hpp"

extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}

namespace xgrad {

using autograd::Node;
using autograd::SavedVariable;
using autograd::tensor_list;

// ---- the batch thread pool ------------------------------------------------------------------

namespace detail {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins on `done()` for up to `us` microseconds; returns whether it became true.
template <class F>
bool spin_until(F done, int us) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return false;
  }
}

// A fixed set of worker threads sharing one job at a time: a function over chunk indices
// [0, n). The caller and the workers claim chunks from a shared counter, so a worker that the
// OS has not scheduled yet (another process on its core) costs nothing: the caller takes its
// chunks. Idle workers spin for a short while (the next conv/pool call of a training step
// comes within microseconds), then sleep on a condition variable.
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
    work(gen, job, n);
    // Wait until every claimed chunk has finished.
    const auto all_done = [&] { return done_.load(std::memory_order_acquire) == n; };
    if (!spin_until(all_done, 100)) {
      std::unique_lock<std::mutex> lock(mu_);
      finished_.wait(lock, all_done);
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

// While alive, OpenBLAS runs every call on the calling thread: the pool's threads each call
// GEMM on their own images, and must not queue up for OpenBLAS's own (busy) threads.
class BlasSingleThreaded {
 public:
  BlasSingleThreaded() : saved_(openblas_get_num_threads()) {
    if (saved_ > 1) openblas_set_num_threads(1);
  }
  ~BlasSingleThreaded() {
    if (saved_ > 1) openblas_set_num_threads(saved_);
  }
  BlasSingleThreaded(const BlasSingleThreaded&) = delete;
  BlasSingleThreaded& operator=(const BlasSingleThreaded&) = delete;

 private:
  int saved_;
};

}  // namespace

namespace {
std::atomic<int> g_batch_threads{0};  // 0: follow get_num_threads()
}  // namespace

}  // namespace detail

void set_num_batch_threads(int n) {
  check(n >= 0, "set_num_batch_threads: need n >= 1 (or 0 to follow get_num_threads()), got ", n);
  detail::g_batch_threads.store(n, std::memory_order_relaxed);
}

int get_num_batch_threads() {
  const int n = detail::g_batch_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : get_num_threads();
}

namespace detail {

// Declared in pool.cpp as well (internal, not installed).
std::int64_t parallel_chunks(std::int64_t n, std::int64_t min_chunk);
void parallel_for(std::int64_t n, std::int64_t min_chunk,
                  const std::function<void(std::int64_t, std::int64_t, std::int64_t)>& f);

/// The number of chunks parallel_for splits [0, n) into: at most 16, each at least
/// min_chunk long (except when n is smaller). Depends on n and min_chunk only.
std::int64_t parallel_chunks(std::int64_t n, std::int64_t min_chunk) {
  if (n <= 0) return 0;
  const std::int64_t size = std::max<std::int64_t>({1, min_chunk, (n + 15) / 16});
  return (n + size - 1) / size;
}

/// Runs f(begin, end, chunk) over the parallel_chunks(n, min_chunk) contiguous chunks of
/// [0, n), each exactly once, on up to get_num_batch_threads() threads (the caller included).
/// The chunks do not depend on the thread count, so per-chunk partial results added up in
/// chunk order give the same numbers with any number of threads. BLAS calls inside f run
/// single-threaded. On nested or concurrent use the chunks run serially on the caller.
void parallel_for(std::int64_t n, std::int64_t min_chunk,
                  const std::function<void(std::int64_t, std::int64_t, std::int64_t)>& f) {
  const std::int64_t chunks = parallel_chunks(n, min_chunk);
  if (chunks == 0) return;
  const std::int64_t size = (n + chunks - 1) / chunks;
  const auto run_chunk = [&](std::int64_t c) { f(c * size, std::min(n, (c + 1) * size), c); };
  const int threads =
      static_cast<int>(std::min<std::int64_t>({get_num_batch_threads(), chunks, 64}));
  if (threads > 1) {
    BlasSingleThreaded blas_guard;
    const std::function<void(std::int64_t)> job = run_chunk;
    if (ThreadPool::instance().run(threads - 1, chunks, job)) return;
  }
  for (std::int64_t c = 0; c < chunks; ++c) run_chunk(c);
}

}  // namespace detail

namespace {

// ---- GEMM on raw pointers (row-major), single call to OpenBLAS --------------------------------

// C[M,N] = beta·C + op(A)[M,K]·op(B)[K,N].
template <class T>
void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const T* A,
          std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (std::int64_t i = 0; i < M; ++i) {
      T* row = C + i * ldc;
      if (beta == T(0)) {
        std::fill(row, row + N, T(0));
      } else {
        for (std::int64_t j = 0; j < N; ++j) row[j] *= beta;
      }
    }
    return;
  }
  const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  const int m = static_cast<int>(M), n = static_cast<int>(N), k = static_cast<int>(K);
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, TA, TB, m, n, k, 1.0f, A, static_cast<int>(lda), B,
                static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
  } else {
    cblas_dgemm(CblasRowMajor, TA, TB, m, n, k, 1.0, A, static_cast<int>(lda), B,
                static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
  }
}

// ---- geometry ---------------------------------------------------------------------------------

struct ConvGeom {
  std::int64_t N = 0, C = 0, H = 0, W = 0, O = 0, kH = 0, kW = 0;
  std::int64_t sH = 1, sW = 1, pH = 0, pW = 0, dH = 1, dW = 1, groups = 1;
  std::int64_t OH = 0, OW = 0;
  std::int64_t Cg() const { return C / groups; }
  std::int64_t Og() const { return O / groups; }
  std::int64_t K() const { return Cg() * kH * kW; }  // rows of the im2col matrix
  std::int64_t P() const { return OH * OW; }         // its columns: output pixels
  // 1x1 kernel, stride 1, no padding: the input plane block is the im2col matrix itself.
  bool pointwise() const { return kH == 1 && kW == 1 && sH == 1 && sW == 1 && pH == 0 && pW == 0; }
};

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

// The output positions o in [0, out) whose input coordinate o·s + off lies in [0, in).
struct Range {
  std::int64_t lo, hi;
};
Range valid_range(std::int64_t off, std::int64_t s, std::int64_t in, std::int64_t out) {
  std::int64_t lo = off >= 0 ? 0 : ceil_div(-off, s);
  std::int64_t hi = in - off > 0 ? ceil_div(in - off, s) : 0;
  hi = std::min(hi, out);
  lo = std::min(lo, hi);
  return {lo, hi};
}

// ---- im2col / col2im ---------------------------------------------------------------------------

// cols[K, P] from one image's group of channels x[Cg, H, W] (Chellapilla et al. 2006, §2):
// row (c, i, j) holds x[c, oh·sH − pH + i·dH, ow·sW − pW + j·dW] for every output pixel (oh,
// ow), zero where that falls in the padding.
template <class T>
void im2col(const T* __restrict x, const ConvGeom& g, T* __restrict cols) {
  const std::int64_t H = g.H, W = g.W, OH = g.OH, OW = g.OW, P = g.P();
  // Stride 1 with output width = input width: a tap's rows are one contiguous shifted block.
  const bool block = g.sH == 1 && g.sW == 1 && OW == W;
  for (std::int64_t c = 0; c < g.Cg(); ++c) {
    const T* xc = x + c * H * W;
    for (std::int64_t i = 0; i < g.kH; ++i) {
      const std::int64_t offh = i * g.dH - g.pH;
      const Range rh = valid_range(offh, g.sH, H, OH);
      for (std::int64_t j = 0; j < g.kW; ++j) {
        T* row = cols + ((c * g.kH + i) * g.kW + j) * P;
        const std::int64_t offw = j * g.dW - g.pW;
        const Range rw = valid_range(offw, g.sW, W, OW);
        std::fill(row, row + rh.lo * OW, T(0));
        std::fill(row + rh.hi * OW, row + P, T(0));
        if (rh.lo >= rh.hi) continue;
        if (rw.lo >= rw.hi) {
          std::fill(row + rh.lo * OW, row + rh.hi * OW, T(0));
          continue;
        }
        if (block) {
          // dst index d maps to src index d + delta over the whole valid block; the columns
          // outside [rw.lo, rw.hi) got neighbouring rows' values and are zeroed after.
          const std::int64_t first = rh.lo * OW + rw.lo, last = (rh.hi - 1) * OW + rw.hi;
          const T* src = xc + offh * W + offw;
          for (std::int64_t d = first; d < last; ++d) row[d] = src[d];
          if (rw.lo > 0 || rw.hi < OW) {
            for (std::int64_t oh = rh.lo; oh < rh.hi; ++oh) {
              T* r = row + oh * OW;
              for (std::int64_t ow = 0; ow < rw.lo; ++ow) r[ow] = T(0);
              for (std::int64_t ow = rw.hi; ow < OW; ++ow) r[ow] = T(0);
            }
          }
          continue;
        }
        for (std::int64_t oh = rh.lo; oh < rh.hi; ++oh) {
          T* r = row + oh * OW;
          const T* src = xc + (oh * g.sH + offh) * W + offw;
          for (std::int64_t ow = 0; ow < rw.lo; ++ow) r[ow] = T(0);
          if (g.sW == 1) {
            for (std::int64_t ow = rw.lo; ow < rw.hi; ++ow) r[ow] = src[ow];
          } else {
            const std::int64_t sW = g.sW;
            for (std::int64_t ow = rw.lo; ow < rw.hi; ++ow) r[ow] = src[ow * sW];
          }
          for (std::int64_t ow = rw.hi; ow < OW; ++ow) r[ow] = T(0);
        }
      }
    }
  }
}

// The adjoint of im2col: gx[Cg, H, W] += the entries of cols[K, P] at the positions im2col read
// them from (padding entries are dropped). Overwrites the padding columns of `cols` with
// zeros (it is scratch).
template <class T>
void col2im(T* __restrict cols, const ConvGeom& g, T* __restrict gx) {
  const std::int64_t H = g.H, W = g.W, OH = g.OH, OW = g.OW, P = g.P();
  const bool block = g.sH == 1 && g.sW == 1 && OW == W;
  for (std::int64_t c = 0; c < g.Cg(); ++c) {
    T* gc = gx + c * H * W;
    for (std::int64_t i = 0; i < g.kH; ++i) {
      const std::int64_t offh = i * g.dH - g.pH;
      const Range rh = valid_range(offh, g.sH, H, OH);
      if (rh.lo >= rh.hi) continue;
      for (std::int64_t j = 0; j < g.kW; ++j) {
        T* row = cols + ((c * g.kH + i) * g.kW + j) * P;
        const std::int64_t offw = j * g.dW - g.pW;
        const Range rw = valid_range(offw, g.sW, W, OW);
        if (rw.lo >= rw.hi) continue;
        if (block) {
          // Zero the padding columns, then one contiguous shifted block add.
          if (rw.lo > 0 || rw.hi < OW) {
            for (std::int64_t oh = rh.lo; oh < rh.hi; ++oh) {
              T* r = row + oh * OW;
              for (std::int64_t ow = 0; ow < rw.lo; ++ow) r[ow] = T(0);
              for (std::int64_t ow = rw.hi; ow < OW; ++ow) r[ow] = T(0);
            }
          }
          const std::int64_t first = rh.lo * OW + rw.lo, last = (rh.hi - 1) * OW + rw.hi;
          T* dst = gc + offh * W + offw;
          for (std::int64_t d = first; d < last; ++d) dst[d] += row[d];
          continue;
        }
        for (std::int64_t oh = rh.lo; oh < rh.hi; ++oh) {
          const T* r = row + oh * OW;
          T* dst = gc + (oh * g.sH + offh) * W + offw;
          if (g.sW == 1) {
            for (std::int64_t ow = rw.lo; ow < rw.hi; ++ow) dst[ow] += r[ow];
          } else {
            const std::int64_t sW = g.sW;
            for (std::int64_t ow = rw.lo; ow < rw.hi; ++ow) dst[ow * sW] += r[ow];
          }
        }
      }
    }
  }
}

// Σ r[0..n) with 16 independent partial sums (vectorisable without reassociation flags),
// added up in double.
template <class T>
double row_sum(const T* __restrict r, std::int64_t n) {
  constexpr int kLanes = 16;
  T acc[kLanes] = {};
  std::int64_t p = 0;
  for (; p + kLanes <= n; p += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += r[p + l];
  double s = 0;
  for (; p < n; ++p) s += static_cast<double>(r[p]);
  for (int l = 0; l < kLanes; ++l) s += static_cast<double>(acc[l]);
  return s;
}

// A per-thread scratch buffer, grown as needed and reused across calls.
template <class T>
T* scratch(std::size_t n, int slot) {
  thread_local std::vector<T> bufs[2];
  std::vector<T>& b = bufs[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

// ---- forward and backward kernels -----------------------------------------------------------

// Images per parallel chunk: enough that a chunk is ~0.5 M multiply-adds.
std::int64_t min_images(const ConvGeom& g) {
  const std::int64_t per_image = std::max<std::int64_t>(1, g.O * g.K() * g.P());
  return std::max<std::int64_t>(1, 500000 / per_image);
}

template <class T>
void conv_forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* out) {
  const std::int64_t K = g.K(), P = g.P(), Og = g.Og(), Cg = g.Cg();
  const std::int64_t in_img = g.C * g.H * g.W, out_img = g.O * P;
  detail::parallel_for(g.N, min_images(g), [&](std::int64_t n0, std::int64_t n1, std::int64_t) {
    T* cols = g.pointwise() ? nullptr : scratch<T>(static_cast<std::size_t>(K * P), 0);
    for (std::int64_t n = n0; n < n1; ++n) {
      T* o = out + n * out_img;
      // The bias goes into the output first; the GEMM adds to it (beta = 1).
      if (b != nullptr) {
        for (std::int64_t oc = 0; oc < g.O; ++oc) std::fill(o + oc * P, o + (oc + 1) * P, b[oc]);
      }
      const T beta = b != nullptr ? T(1) : T(0);
      for (std::int64_t grp = 0; grp < g.groups; ++grp) {
        const T* xg = x + n * in_img + grp * Cg * g.H * g.W;
        const T* B = xg;  // pointwise: the input block is the column matrix
        if (cols != nullptr) {
          im2col(xg, g, cols);
          B = cols;
        }
        // out_g[Og, P] = W_g[Og, K] · cols[K, P]
        gemm<T>(false, false, Og, P, K, w + grp * Og * K, K, B, P, beta, o + grp * Og * P, P);
      }
    }
  });
}

// gx (if non-null), gw (if non-null), gb (if non-null) from gy [N, O, OH, OW].
template <class T>
void conv_backward(const ConvGeom& g, const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb) {
  const std::int64_t K = g.K(), P = g.P(), Og = g.Og(), Cg = g.Cg();
  const std::int64_t in_img = g.C * g.H * g.W, out_img = g.O * P, wsize = g.O * K;
  // Weight and bias gradients: one partial sum per chunk (chunk 0 straight into gw), added
  // up in chunk order, so the result does not depend on the number of threads.
  const std::int64_t chunks = detail::parallel_chunks(g.N, min_images(g));
  std::vector<T> gw_part(
      gw != nullptr ? static_cast<std::size_t>(std::max<std::int64_t>(0, chunks - 1) * wsize) : 0);
  std::vector<double> gb_part(gb != nullptr ? static_cast<std::size_t>(chunks * g.O) : 0, 0.0);
  if (gw != nullptr && chunks == 0) std::fill(gw, gw + wsize, T(0));
  detail::parallel_for(
      g.N, min_images(g), [&](std::int64_t n0, std::int64_t n1, std::int64_t chunk) {
        T* cols = (gw != nullptr && !g.pointwise()) ? scratch<T>(static_cast<std::size_t>(K * P), 0)
                                                    : nullptr;
        T* gcols = (gx != nullptr && !g.pointwise())
                       ? scratch<T>(static_cast<std::size_t>(K * P), 1)
                       : nullptr;
        T* gwc = nullptr;
        if (gw != nullptr) {
          gwc = chunk == 0 ? gw : gw_part.data() + (chunk - 1) * wsize;
          std::fill(gwc, gwc + wsize, T(0));
        }
        double* gbc = gb != nullptr ? gb_part.data() + chunk * g.O : nullptr;
        for (std::int64_t n = n0; n < n1; ++n) {
          const T* gyn = gy + n * out_img;
          if (gbc != nullptr) {
            for (std::int64_t oc = 0; oc < g.O; ++oc) gbc[oc] += row_sum(gyn + oc * P, P);
          }
          if (gcols != nullptr) std::fill(gx + n * in_img, gx + (n + 1) * in_img, T(0));
          for (std::int64_t grp = 0; grp < g.groups; ++grp) {
            const T* gyg = gyn + grp * Og * P;
            const std::int64_t in_off = n * in_img + grp * Cg * g.H * g.W;
            if (gwc != nullptr) {
              const T* B = x + in_off;
              if (cols != nullptr) {
                im2col(x + in_off, g, cols);
                B = cols;
              }
              // gW_g[Og, K] += gy_g[Og, P] · colsᵀ[P, K]
              gemm<T>(false, true, Og, K, P, gyg, P, B, P, T(1), gwc + grp * Og * K, K);
            }
            if (gx != nullptr) {
              const T* wg = w + grp * Og * K;
              if (gcols == nullptr) {
                // Pointwise: the column gradient is the input gradient itself.
                gemm<T>(true, false, K, P, Og, wg, K, gyg, P, T(0), gx + in_off, P);
              } else {
                // gcols[K, P] = W_gᵀ[K, Og] · gy_g[Og, P], scattered back by col2im.
                gemm<T>(true, false, K, P, Og, wg, K, gyg, P, T(0), gcols, P);
                col2im(gcols, g, gx + in_off);
              }
            }
          }
        }
      });
  if (gw != nullptr) {
    for (std::int64_t c = 1; c < chunks; ++c) {
      const T* part = gw_part.data() + (c - 1) * wsize;
      for (std::int64_t i = 0; i < wsize; ++i) gw[i] += part[i];
    }
  }
  if (gb != nullptr) {
    for (std::int64_t oc = 0; oc < g.O; ++oc) {
      double total = 0;
      for (std::int64_t c = 0; c < chunks; ++c)
        total += gb_part[static_cast<std::size_t>(c * g.O + oc)];
      gb[oc] = static_cast<T>(total);
    }
  }
}

// ---- the op ---------------------------------------------------------------------------------

struct Conv2dBackward final : Node {
  SavedVariable input, weight;
  ConvGeom geom;
  std::string_view name() const override { return "conv2d"; }
  tensor_list apply(tensor_list&& grads) override {
    tensor_list out(3);
    const bool need_x = needs_input_grad(0), need_w = needs_input_grad(1),
               need_b = needs_input_grad(2);
    Tensor gy = grads[0].contiguous();
    Tensor xv = need_w ? input.unpack(name()).contiguous() : Tensor();
    Tensor wv = need_x ? weight.unpack(name()).contiguous() : Tensor();
    const Dtype dt = gy.dtype();
    if (need_x) out[0] = empty({geom.N, geom.C, geom.H, geom.W}, dt);
    if (need_w) out[1] = empty({geom.O, geom.Cg(), geom.kH, geom.kW}, dt);
    if (need_b) out[2] = empty({geom.O}, dt);
    dispatch_floating(dt, "conv2d_backward", [&]<class T>() {
      conv_backward<T>(
          geom, need_w ? xv.data_ptr<T>() : nullptr, need_x ? wv.data_ptr<T>() : nullptr,
          gy.data_ptr<T>(), need_x ? out[0].data_ptr<T>() : nullptr,
          need_w ? out[1].data_ptr<T>() : nullptr, need_b ? out[2].data_ptr<T>() : nullptr);
    });
    return out;
  }
  void release_saved() override {
    input.reset();
    weight.reset();
  }
};

std::string pair_str(Size2 s) {
  return std::to_string(s.h) + "x" + std::to_string(s.w);
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, Size2 stride,
              Size2 padding, Size2 dilation, std::int64_t groups) {
  check(input.defined() && weight.defined(), "conv2d: input and weight must be defined");
  const auto shapes = [&] {
    std::string s =
        "input " + format_shape(input.shape()) + ", weight " + format_shape(weight.shape());
    if (bias.defined()) s += ", bias " + format_shape(bias.shape());
    return s;
  };
  if (input.dim() != 4) fail("conv2d: expected a 4-D input [N,C,H,W], got ", shapes());
  if (weight.dim() != 4) fail("conv2d: expected a 4-D weight [O,C/groups,kH,kW], got ", shapes());
  if (input.dtype() != weight.dtype() || (bias.defined() && bias.dtype() != input.dtype()))
    fail("conv2d: expected tensors of the same dtype, got ", dtype_name(input.dtype()), " ",
         input.shape(), " and ", dtype_name(weight.dtype()), " ", weight.shape(),
         bias.defined() ? std::string(" and ") + std::string(dtype_name(bias.dtype())) + " " +
                              format_shape(bias.shape())
                        : std::string());
  check(stride.h >= 1 && stride.w >= 1, "conv2d: stride must be at least 1, got ", pair_str(stride),
        " (", shapes(), ")");
  check(dilation.h >= 1 && dilation.w >= 1, "conv2d: dilation must be at least 1, got ",
        pair_str(dilation), " (", shapes(), ")");
  check(padding.h >= 0 && padding.w >= 0, "conv2d: padding must be non-negative, got ",
        pair_str(padding), " (", shapes(), ")");
  check(groups >= 1, "conv2d: groups must be at least 1, got ", groups, " (", shapes(), ")");
  ConvGeom g;
  g.N = input.shape()[0];
  g.C = input.shape()[1];
  g.H = input.shape()[2];
  g.W = input.shape()[3];
  g.O = weight.shape()[0];
  g.kH = weight.shape()[2];
  g.kW = weight.shape()[3];
  g.sH = stride.h;
  g.sW = stride.w;
  g.pH = padding.h;
  g.pW = padding.w;
  g.dH = dilation.h;
  g.dW = dilation.w;
  g.groups = groups;
  check(g.kH >= 1 && g.kW >= 1 && g.O >= 1, "conv2d: weight ", weight.shape(),
        " has an empty dimension (", shapes(), ")");
  check(g.C % groups == 0, "conv2d: groups ", groups, " does not divide the ", g.C,
        " input channels (", shapes(), ")");
  check(g.O % groups == 0, "conv2d: groups ", groups, " does not divide the ", g.O,
        " output channels (", shapes(), ")");
  check(weight.shape()[1] * groups == g.C, "conv2d: channel mismatch: input has ", g.C,
        " channels but weight expects ", weight.shape()[1] * groups, " (", weight.shape()[1],
        " per group x ", groups, " groups) (", shapes(), ")");
  if (bias.defined())
    check(bias.dim() == 1 && bias.shape()[0] == g.O, "conv2d: bias must have shape [", g.O,
          "], got ", bias.shape(), " (", shapes(), ")");
  const std::int64_t ekH = g.dH * (g.kH - 1) + 1, ekW = g.dW * (g.kW - 1) + 1;
  const std::int64_t padH = g.H + 2 * g.pH, padW = g.W + 2 * g.pW;
  check(ekH <= padH && ekW <= padW, "conv2d: kernel ", g.kH, "x", g.kW, " (dilated ", ekH, "x", ekW,
        ") is larger than the padded input ", padH, "x", padW, " (", shapes(), ", padding ",
        pair_str(padding), ", dilation ", pair_str(dilation), ")");
  g.OH = (padH - ekH) / g.sH + 1;
  g.OW = (padW - ekW) / g.sW + 1;

  Tensor out = empty({g.N, g.O, g.OH, g.OW}, input.dtype());
  {
    Tensor x = input.detach().contiguous(), w = weight.detach().contiguous();
    Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
    dispatch_floating(input.dtype(), "conv2d", [&]<class T>() {
      conv_forward<T>(g, x.data_ptr<T>(), w.data_ptr<T>(), b.defined() ? b.data_ptr<T>() : nullptr,
                      out.data_ptr<T>());
    });
  }
  const Tensor bias_in = bias;
  if (autograd::any_requires_grad({&input, &weight, &bias_in})) {
    auto node = std::make_shared<Conv2dBackward>();
    if (weight.requires_grad()) node->input = SavedVariable(input);
    if (input.requires_grad()) node->weight = SavedVariable(weight);
    node->geom = g;
    autograd::record(node, {&input, &weight, &bias_in}, {&out});
  }
  return out;
}

}  // namespace xgrad
