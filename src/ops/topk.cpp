// topk: the indices from a partial sort per slice; the values are gather(input, dim, indices),
// whose vjp is the scatter-add and whose jvp is the gather of the tangent (indexing.cpp), so
// topk's derivatives to any order are gather's.
#include "xgrad/ops/topk.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "detail/kernel.hpp"
#include "xgrad/autograd/batching.hpp"
#include "xgrad/ops/indexing.hpp"
#include "xgrad/ops/shape.hpp"

namespace xgrad {

namespace {

// a before b in topk's order (descending for largest): NaN is larger than every number, and
// the lower index wins a tie.
template <class T>
bool before(T a, std::int64_t ia, T b, std::int64_t ib, bool largest) {
  if constexpr (std::is_floating_point_v<T>) {
    const bool na = std::isnan(a), nb = std::isnan(b);
    if (na || nb) {
      if (na && nb) return ia < ib;
      return largest ? na : nb;
    }
  }
  if (a != b) return largest ? a > b : a < b;
  return ia < ib;
}

template <class T>
Tensor topk_indices(const Tensor& xc, std::int64_t dim, std::int64_t k, bool largest, bool sorted) {
  const detail::AxisSplit s = detail::split_axis(xc.shape(), dim);
  Shape shape = xc.shape();
  shape[static_cast<std::size_t>(dim)] = k;
  Tensor idx = empty(shape, Dtype::int64);
  const T* px = xc.data_ptr<T>();
  std::int64_t* pi = idx.data_ptr<std::int64_t>();
  std::vector<std::int64_t> order(static_cast<std::size_t>(s.n));
  for (std::int64_t o = 0; o < s.outer; ++o) {
    for (std::int64_t in = 0; in < s.inner; ++in) {
      const T* row = px + o * s.n * s.inner + in;
      std::iota(order.begin(), order.end(), 0);
      auto cmp = [&](std::int64_t a, std::int64_t b) {
        return before(row[a * s.inner], a, row[b * s.inner], b, largest);
      };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), cmp);
      if (!sorted) std::sort(order.begin(), order.begin() + k);
      for (std::int64_t j = 0; j < k; ++j)
        pi[(o * k + j) * s.inner + in] = order[static_cast<std::size_t>(j)];
    }
  }
  return idx;
}

}  // namespace

TopK topk(const Tensor& input, std::int64_t k, std::int64_t dim, bool largest, bool sorted) {
  if (autograd::any_batched(input)) {
    auto r = autograd::vmap_op_multi("topk", {input}, [&](const autograd::BatchedArgs& p) {
      TopK t = topk(p[0], k, autograd::physical_dim(p, 0, dim, "topk"), largest, sorted);
      return std::vector<Tensor>{t.values, t.indices};
    });
    return {r[0], r[1]};
  }
  check(input.defined(), "topk: undefined input");
  check(input.dtype() != Dtype::boolean,
        "topk: expected a float32, float64 or int64 tensor, got "
        "bool of shape ",
        input.shape());
  if (input.dim() == 0) {
    check(dim == 0 || dim == -1, "topk: dim ", dim, " is out of range for a 0-d tensor");
    check(k == 0 || k == 1, "topk: k ", k, " is out of range for a 0-d tensor");
    TopK r = topk(reshape(input, {1}), k, 0, largest, sorted);
    if (k == 1) return {reshape(r.values, {}), reshape(r.indices, {})};
    return r;
  }
  const std::int64_t d = detail::normalize_axis(dim, input.dim(), input.shape(), "topk");
  const std::int64_t n = input.shape()[static_cast<std::size_t>(d)];
  check(k >= 0 && k <= n, "topk: k ", k, " is out of range for dimension ", d, " of size ", n,
        " in a tensor of shape ", input.shape());
  Tensor xc = input.detach().contiguous();
  Tensor idx;
  if (input.dtype() == Dtype::int64) {
    idx = topk_indices<std::int64_t>(xc, d, k, largest, sorted);
  } else {
    idx = dispatch_floating(input.dtype(), "topk",
                            [&]<class T>() { return topk_indices<T>(xc, d, k, largest, sorted); });
  }
  return {gather(input, d, idx), idx};
}

}  // namespace xgrad
