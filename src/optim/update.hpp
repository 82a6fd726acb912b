// Internal helpers shared by the optimizers' fused update loops.
#pragma once

#include "xgrad/tensor.hpp"

namespace xgrad::optim::detail {

/// Marks tensors written by a fused update loop as modified (version counter), as the
/// in-place ops would.
inline void bump(const Tensor& a, const Tensor& b = Tensor(), const Tensor& c = Tensor(),
                 const Tensor& d = Tensor()) {
  for (const Tensor* t : {&a, &b, &c, &d})
    if (t->defined()) t->storage()->bump_version();
}

}  // namespace xgrad::optim::detail
