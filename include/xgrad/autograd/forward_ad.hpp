// Forward-mode AD (torch.autograd.forward_ad): a tensor may carry a tangent, and every op
// with a jvp rule computes its output's tangent as it computes the output — one pass gives
// J·v for one direction v. Used by func::jvp and func::jacfwd (func.hpp).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <utility>

#include "xgrad/tensor.hpp"

namespace xgrad::autograd::forward_ad {

/// RAII: a dual level, inside which make_dual attaches tangents and ops propagate them. When
/// it ends, every tangent made inside is forgotten (tensors keep their primal values).
/// Throws xgrad::Error when another dual level is already active on this thread (nested
/// levels are not supported, as in torch 1.13).
class dual_level {
 public:
  dual_level();
  ~dual_level();
  dual_level(const dual_level&) = delete;
  dual_level& operator=(const dual_level&) = delete;
};

/// A tensor with `primal`'s values (sharing its data and its autograd history) that carries
/// `tangent` as its forward-mode derivative. tangent: primal's shape; its dtype is converted
/// to primal's. Throws xgrad::Error outside a dual_level, on a shape mismatch, or for a
/// non-float primal.
Tensor make_dual(const Tensor& primal, const Tensor& tangent);

/// What unpack_dual returns: the primal (same data, no tangent) and the tangent (undefined
/// when t has none at the active level).
struct UnpackedDual {
  Tensor primal;
  Tensor tangent;
};
UnpackedDual unpack_dual(const Tensor& t);

}  // namespace xgrad::autograd::forward_ad

namespace xgrad::autograd {

namespace detail {
/// The active dual level on this thread (0: none) and whether ops propagate tangents now
/// (off while a jvp rule runs, so that the rule's own ops do not make tangents of tangents).
std::uint32_t active_fw_level();
bool fw_propagating();
class PauseForward {
 public:
  PauseForward();
  ~PauseForward();
  PauseForward(const PauseForward&) = delete;
  PauseForward& operator=(const PauseForward&) = delete;

 private:
  bool prev_;
};
}  // namespace detail

/// True when t carries a tangent at the active dual level.
bool has_tangent(const Tensor& t);
/// True when a dual level is active, tangents propagate, and one of the tensors has a tangent:
/// then the op must run its jvp rule. Costs one thread-local load when no level is active.
inline bool any_tangent(std::initializer_list<const Tensor*> inputs) {
  if (!detail::fw_propagating()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && has_tangent(*t)) return true;
  return false;
}
/// t's tangent at the active level, or zeros of t's shape and dtype when it has none (a jvp
/// rule may then treat every input alike; zeros broadcast like the input would).
Tensor tangent(const Tensor& t);
/// t's tangent, or an undefined tensor when it has none.
Tensor tangent_or_undefined(const Tensor& t);
/// Attaches `tangent` to out (same shape and dtype, else xgrad::Error naming `op`).
void set_tangent(const Tensor& out, const Tensor& tangent, std::string_view op);

/// The forward-mode step of an op, beside its record_op: when an input carries a tangent,
/// runs `rule()` (with tangent propagation paused) and attaches its result to `out`.
///   jvp_op("exp", {&a}, out, [&] { return mul(tangent(a), out); });
template <class Rule>
void jvp_op(std::string_view op, std::initializer_list<const Tensor*> inputs, const Tensor& out,
            Rule&& rule) {
  if (!any_tangent(inputs)) return;
  Tensor t;
  {
    detail::PauseForward pause;
    t = rule();
  }
  if (t.defined()) set_tangent(out, t, op);
}

}  // namespace xgrad::autograd
