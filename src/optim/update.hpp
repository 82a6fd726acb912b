// Internal helpers shared by the optimizers' fused update loops: the walk over the parameters
// that every built-in step() makes around its loop.
#pragma once

#include <array>
#include <vector>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/optim/optimizer.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::optim::detail {

/// Marks tensors written by a fused update loop as modified (version counter), as the
/// in-place ops would.
inline void bump(const Tensor& a, const Tensor& b = Tensor(), const Tensor& c = Tensor(),
                 const Tensor& d = Tensor()) {
  for (const Tensor* t : {&a, &b, &c, &d})
    if (t->defined()) t->storage()->bump_version();
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
