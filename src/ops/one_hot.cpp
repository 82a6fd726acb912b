// one_hot: an integer kernel, no derivative.
#include "xgrad/ops/one_hot.hpp"

#include <algorithm>

#include "detail/kernel.hpp"
#include "xgrad/autograd/batching.hpp"

namespace xgrad {

Tensor one_hot(const Tensor& indices, std::int64_t num_classes) {
  if (autograd::any_batched(indices))  // [B, ...] -> [B, ..., C]; C must not depend on a sample
    return autograd::vmap_op("one_hot", {indices}, [&](const autograd::BatchedArgs& p) {
      check(num_classes >= 0,
            "one_hot: num_classes = -1 depends on the data; give num_classes "
            "under func::vmap");
      return one_hot(p[0], num_classes);
    });
  check(indices.defined(), "one_hot: undefined input");
  check(indices.dtype() == Dtype::int64, "one_hot: expected an int64 tensor of class indices, got ",
        dtype_name(indices.dtype()), " of shape ", indices.shape());
  check(num_classes >= -1, "one_hot: num_classes must be -1 or non-negative, got ", num_classes);
  Tensor ic = indices.contiguous();
  const std::int64_t* pi = ic.data_ptr<std::int64_t>();
  const std::int64_t n = ic.numel();
  std::int64_t lo = 0, hi = -1;
  for (std::int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, pi[i]);
    hi = std::max(hi, pi[i]);
  }
  check(lo >= 0, "one_hot: class indices must be non-negative, got ", lo, " in a tensor of shape ",
        indices.shape());
  if (num_classes == -1) num_classes = hi + 1;
  check(hi < num_classes, "one_hot: index ", hi, " is out of range for num_classes ", num_classes);
  Shape shape = indices.shape();
  shape.push_back(num_classes);
  Tensor out = zeros(shape, Dtype::int64);
  std::int64_t* po = out.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) po[i * num_classes + pi[i]] = 1;
  return out;
}

}  // namespace xgrad
