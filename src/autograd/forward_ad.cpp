#include "xgrad/autograd/forward_ad.hpp"

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"

namespace xgrad::autograd {

namespace {
// make_dual's link to the primal: the gradient passes through unchanged.
struct AliasBackward final : Node {
  std::string_view name() const override { return "alias"; }
  tensor_list apply(tensor_list&& g) override { return {std::move(g[0])}; }
};

// The active level, and a counter that gives each level a number never used before: a tensor
// whose fw_level is not the active one has no tangent, so ending a level forgets all of its
// tangents without visiting them.
thread_local std::uint32_t g_level = 0;
thread_local std::uint32_t g_last_level = 0;
thread_local bool g_paused = false;
}  // namespace

namespace detail {
std::uint32_t active_fw_level() {
  return g_level;
}
bool fw_propagating() {
  return g_level != 0 && !g_paused;
}
PauseForward::PauseForward() : prev_(g_paused) {
  g_paused = true;
}
PauseForward::~PauseForward() {
  g_paused = prev_;
}
}  // namespace detail

bool has_tangent(const Tensor& t) {
  if (g_level == 0 || !t.defined()) return false;
  const auto& impl = *t.impl();
  return impl.fw_level == g_level && impl.fw_grad.defined();
}

Tensor tangent_or_undefined(const Tensor& t) {
  return has_tangent(t) ? t.impl()->fw_grad : Tensor();
}

Tensor tangent(const Tensor& t) {
  if (has_tangent(t)) return t.impl()->fw_grad;
  return zeros(t.shape(), t.dtype());
}

void set_tangent(const Tensor& out, const Tensor& tangent, std::string_view op) {
  check(g_level != 0, op, ": a tangent can only be set inside a forward_ad::dual_level");
  if (tangent.shape() != out.shape() || tangent.dtype() != out.dtype())
    fail(op, ": the tangent has shape ", tangent.shape(), " ", dtype_name(tangent.dtype()),
         " but the output has shape ", out.shape(), " ", dtype_name(out.dtype()));
  auto& impl = *out.impl();
  impl.fw_grad = tangent;
  impl.fw_level = g_level;
  // The op's node saved `out` (record_op runs before jvp_op) without a tangent yet.
  if (impl.grad_fn) impl.grad_fn->set_saved_output_tangent(impl.output_nr, tangent, g_level);
}

namespace forward_ad {

dual_level::dual_level() {
  check(g_level == 0,
        "forward_ad::dual_level: a dual level is already active on this thread (nested levels "
        "are not supported)");
  g_level = ++g_last_level;
}

dual_level::~dual_level() {
  g_level = 0;
}

Tensor make_dual(const Tensor& primal, const Tensor& tangent) {
  check(g_level != 0, "make_dual: call it inside a forward_ad::dual_level");
  check(primal.defined() && tangent.defined(), "make_dual: primal and tangent must be defined");
  check(is_floating(primal.dtype()), "make_dual: the primal must be a float tensor, got ",
        dtype_name(primal.dtype()));
  if (primal.shape() != tangent.shape())
    fail("make_dual: the tangent has shape ", tangent.shape(), " but the primal has shape ",
         primal.shape());
  // A new handle on the same data; when the primal needs a gradient, an identity node links
  // it to the primal, so reverse mode still reaches the primal's leaves (torch's make_dual is
  // a differentiable view as well).
  Tensor d = primal.detach();
  record_op<AliasBackward>({&primal}, {&d});
  auto& impl = *d.impl();
  impl.fw_grad = tangent.dtype() == primal.dtype() ? tangent : tangent.to(primal.dtype());
  impl.fw_level = g_level;
  return d;
}

UnpackedDual unpack_dual(const Tensor& t) {
  check(t.defined(), "unpack_dual: the tensor is undefined");
  UnpackedDual r;
  r.tangent = tangent_or_undefined(t);
  if (!r.tangent.defined()) {
    r.primal = t;
    return r;
  }
  r.primal = t.detach();
  record_op<AliasBackward>({&t}, {&r.primal});
  return r;
}

}  // namespace forward_ad
}  // namespace xgrad::autograd
