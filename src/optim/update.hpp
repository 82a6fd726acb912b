// Internal helpers shared by the built-in optimizers: the defaults map their options give, and
// the walk over the parameters that every step() makes around its fused update loop.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "detail/parallel.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/optim/optimizer.hpp"
#include "xgrad/runtime.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::optim::detail {

/// An optimizer's options as its defaults map, checking first, in the order given, that each of
/// `nonnegative` is finite and >= 0 (check_nonnegative, naming `optimizer`); each of `flags`
/// goes in as 1 or 0.
inline std::map<std::string, double> options_map(
    const char* optimizer, std::initializer_list<std::pair<const char*, double>> nonnegative,
    std::initializer_list<std::pair<const char*, bool>> flags) {
  std::map<std::string, double> out;
  for (const auto& [name, v] : nonnegative) {
    check_nonnegative(optimizer, name, v);
    out[name] = v;
  }
  for (const auto& [name, on] : flags) out[name] = on ? 1.0 : 0.0;
  return out;
}

/// Marks tensors written by a fused update loop as modified (version counter), as the
/// in-place ops would.
inline void bump(const Tensor& a, const Tensor& b = Tensor(), const Tensor& c = Tensor(),
                 const Tensor& d = Tensor()) {
  for (const Tensor* t : {&a, &b, &c, &d})
    if (t->defined()) t->storage()->bump_version();
}

/// Runs a fused elementwise update, `kernel(offset, count)` over elements [offset,
/// offset + count) of every array it walks, on [0, n): in one call when n is small, otherwise
/// in contiguous chunks of at least 2^15 elements (multiples of 64, at most 16 chunks) on
/// get_num_batch_threads() threads (src/detail/parallel.hpp), and again in one call when the
/// pool does not take them (nested, busy, or backing off). Every element is updated by the
/// same formula whichever chunk holds it, so the results are bit-identical for any thread
/// count (tests/optim/optimizer_threads_test.cpp).
template <class Kernel>
void split_update(std::int64_t n, Kernel&& kernel) {
  constexpr std::int64_t kMinChunk = std::int64_t{1} << 15;
  const int threads = get_num_batch_threads();
  if (threads <= 1 || n < 2 * kMinChunk) {
    kernel(std::int64_t{0}, n);
    return;
  }
  const std::int64_t chunks = std::min<std::int64_t>(16, n / kMinChunk);
  const std::int64_t size = ((n + chunks - 1) / chunks + 63) / 64 * 64;
  const bool split =
      ::xgrad::detail::parallel_try_run(threads, (n + size - 1) / size, [&](std::int64_t c) {
        const std::int64_t begin = c * size;
        kernel(begin, std::min(n, begin + size) - begin);
      });
  if (!split) kernel(std::int64_t{0}, n);
}

/// The state tensors one update wrote besides the parameter (undefined ones are skipped).
using Written = std::array<Tensor, 3>;

/// The per-parameter walk of a built-in optimizer's step(), under no_grad: for each group,
/// `per_group(group)` reads the group's hyperparameters and returns the update of one
/// parameter, `update(Tensor& p, const Tensor& g) -> Written`, which is called for every
/// parameter p of the group that has a gradient, g being that gradient made contiguous (the
/// fused loops walk it in row-major order). The versions of p and of the tensors the update
/// returns are bumped afterwards. Throws what the update throws.
template <class PerGroup>
void for_each_param(std::vector<ParamGroup>& groups, PerGroup&& per_group) {
  no_grad guard;
  for (ParamGroup& group : groups) {
    auto update = per_group(static_cast<const ParamGroup&>(group));
    for (Tensor& p : group.params) {
      if (!p.grad().defined()) continue;
      const Tensor g = p.grad().contiguous();
      const Written written = update(p, g);
      bump(p, written[0], written[1], written[2]);
    }
  }
}

}  // namespace xgrad::optim::detail
