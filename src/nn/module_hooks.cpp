// Module hooks: forward pre-hooks, forward hooks and full backward hooks, as torch.nn.Module's
// (torch/nn/modules/module.py _call_impl and torch/utils/hooks.py BackwardHook).
#include <algorithm>

#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

namespace detail {

/// A module's hooks, each under the id its handle holds.
struct HookTable {
  std::vector<std::pair<std::uint64_t, ForwardPreHook>> pre;
  std::vector<std::pair<std::uint64_t, ForwardHook>> forward;
  std::vector<std::pair<std::uint64_t, BackwardHook>> backward;
  std::uint64_t next_id = 1;

  template <class V>
  static bool erase(V& v, std::uint64_t id) {
    auto it = std::find_if(v.begin(), v.end(), [id](const auto& e) { return e.first == id; });
    if (it == v.end()) return false;
    v.erase(it);
    return true;
  }
  template <class V>
  static bool has(const V& v, std::uint64_t id) {
    return std::any_of(v.begin(), v.end(), [id](const auto& e) { return e.first == id; });
  }
};

}  // namespace detail

void HookHandle::remove() {
  if (auto t = table_.lock()) {
    using T = detail::HookTable;
    T::erase(t->pre, id_) || T::erase(t->forward, id_) || T::erase(t->backward, id_);
  }
  table_.reset();
}

bool HookHandle::active() const {
  auto t = table_.lock();
  using T = detail::HookTable;
  return t && (T::has(t->pre, id_) || T::has(t->forward, id_) || T::has(t->backward, id_));
}

detail::HookTable& Module::hook_table() {
  if (!hooks_) hooks_ = std::make_shared<detail::HookTable>();
  return *hooks_;
}

HookHandle Module::add_forward_pre_hook(ForwardPreHook hook) {
  check(static_cast<bool>(hook), "register_forward_pre_hook: the hook is empty");
  auto& t = hook_table();
  t.pre.emplace_back(t.next_id, std::move(hook));
  return HookHandle(hooks_, t.next_id++);
}

HookHandle Module::add_forward_hook(ForwardHook hook) {
  check(static_cast<bool>(hook), "register_forward_hook: the hook is empty");
  auto& t = hook_table();
  t.forward.emplace_back(t.next_id, std::move(hook));
  return HookHandle(hooks_, t.next_id++);
}

HookHandle Module::add_full_backward_hook(BackwardHook hook) {
  check(static_cast<bool>(hook), "register_full_backward_hook: the hook is empty");
  auto& t = hook_table();
  t.backward.emplace_back(t.next_id, std::move(hook));
  return HookHandle(hooks_, t.next_id++);
}

namespace {

// What the two identity nodes around one hooked call share.
struct BackwardHookState {
  Module* module;
  std::weak_ptr<detail::HookTable> alive;  // expires with the module: then no hook runs
  std::string type;
  std::vector<BackwardHook> hooks;  // those attached at the time of the call
  bool input_hooked = false;        // the input required grad and got an identity node
  bool have_grad_output = false;
  Tensor grad_output;
};

// Both nodes are identities: apply() hands the incoming gradients on as they are (or as a hook
// replaced them), which is differentiable as it stands — under create_graph the gradients carry
// their own graph through, and the hooks see (and may replace) those recorded tensors.

// On the module's output: remembers grad_output. When the input needs no gradient, the hooks
// run here, with an undefined grad_input (torch does the same).
class BackwardHookOutputNode final : public autograd::Node {
 public:
  explicit BackwardHookOutputNode(std::shared_ptr<BackwardHookState> s) : state_(std::move(s)) {}
  std::string_view name() const override { return "backward_hook"; }
  autograd::tensor_list apply(autograd::tensor_list&& grads) override {
    auto& s = *state_;
    s.have_grad_output = true;
    // Kept for the input node only: under create_graph grad_output's graph may hold this node
    // (through a saved forward tensor), so the state must not keep it longer than needed.
    if (s.input_hooked) s.grad_output = grads[0];
    if (!s.input_hooked && !s.alive.expired()) {
      for (auto& h : s.hooks) {
        Tensor r = h(*s.module, Tensor(), grads[0]);
        check(!r.defined(), s.type,
              ": a backward hook returned a grad_input, but the module's input needs no "
              "gradient");
      }
    }
    return std::move(grads);
  }

 private:
  std::shared_ptr<BackwardHookState> state_;
};

// On the module's input: runs the hooks on grad_input once it is computed; they may replace it.
class BackwardHookInputNode final : public autograd::Node {
 public:
  explicit BackwardHookInputNode(std::shared_ptr<BackwardHookState> s) : state_(std::move(s)) {}
  std::string_view name() const override { return "backward_hook"; }
  autograd::tensor_list apply(autograd::tensor_list&& grads) override {
    auto& s = *state_;
    // A gradient that reached the input without passing through the output (torch: double
    // backward) is not the module's: no hook runs.
    if (!s.have_grad_output || s.alive.expired()) return std::move(grads);
    // Taken, not kept (see above); a later pass must come through the output again.
    const Tensor grad_output = std::move(s.grad_output);
    s.grad_output = Tensor();
    s.have_grad_output = false;
    const autograd::OutputMeta& meta = outputs()[0];
    for (auto& h : s.hooks) {
      Tensor r = h(*s.module, grads[0], grad_output);
      if (!r.defined()) continue;
      check(r.shape() == meta.shape && r.dtype() == meta.dtype, s.type,
            ": a backward hook returned a grad_input of shape ", r.shape(), " (",
            dtype_name(r.dtype()), ") for an input of shape ", meta.shape, " (",
            dtype_name(meta.dtype), ")");
      grads[0] = r;
    }
    return std::move(grads);
  }

 private:
  std::shared_ptr<BackwardHookState> state_;
};

// An identity node on `t`: the returned tensor shares t's data and has `node` as grad_fn. In
// forward mode it carries t's tangent on (the identity's jvp), so hooks do not cut func::jvp.
Tensor through(const Tensor& t, const std::shared_ptr<autograd::Node>& node) {
  std::vector<Tensor> ins{t}, outs{t.detach()};
  autograd::record(node, ins, outs);
  if (autograd::any_tangent({&t}))
    autograd::set_tangent(outs[0], autograd::tangent(t), node->name());
  return outs[0];
}

}  // namespace

Tensor Module::call_with_hooks(const Tensor& x) {
  // Copies of the lists: a hook may remove itself (or add others) while they run.
  const auto pre = hooks_->pre;
  Tensor input = x;
  for (auto& [id, h] : pre) {
    Tensor r = h(*this, input);
    if (r.defined()) input = r;
  }
  std::shared_ptr<BackwardHookState> bw;
  if (!hooks_->backward.empty() && is_grad_enabled()) {
    bw = std::make_shared<BackwardHookState>();
    bw->module = this;
    bw->alive = hooks_;
    bw->type = type_name();
    for (auto& [id, h] : hooks_->backward) bw->hooks.push_back(h);
    if (input.defined() && input.requires_grad()) {
      bw->input_hooked = true;
      input = through(input, std::make_shared<BackwardHookInputNode>(bw));
    }
  }
  Tensor out = forward(input);
  const auto fwd = hooks_->forward;
  for (auto& [id, h] : fwd) {
    Tensor r = h(*this, input, out);
    if (r.defined()) out = r;
  }
  if (bw && out.defined() && out.requires_grad())
    out = through(out, std::make_shared<BackwardHookOutputNode>(bw));
  return out;
}

}  // namespace xgrad::nn
