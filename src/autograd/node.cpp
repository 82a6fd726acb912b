#include "xgrad/autograd/node.hpp"

#include "xgrad/autograd/batching.hpp"

#include "xgrad/autograd/forward_ad.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/ops/elementwise.hpp"

namespace xgrad::autograd {

// ---- SavedVariable ----------------------------------------------------------------------

SavedVariable::SavedVariable(const Tensor& t, const Node* owner)
    : version_(t.version()), saved_(true) {
  const auto& impl = *t.impl();
  is_output_ = owner != nullptr && impl.grad_fn.get() == owner;
  if (!is_output_) {
    if (impl.requires_grad && !impl.grad_fn) {
      data_ = t.detach();  // a leaf: its data, and the leaf itself weakly (see node.hpp)
      leaf_ = t.impl();
    } else if (impl.grad_fn || impl.fw_level != 0 || impl.retains_grad) {
      // An input with history keeps it (create_graph differentiates through it), in a handle
      // of its own: the input's own handle may come to point back at this node — a tangent
      // computed from this op's output, or a retained .grad() with a graph, would then close a
      // cycle input → tangent/grad → graph → this node → input.
      auto copy = xgrad::detail::make_pooled<TensorImpl>(impl.storage, impl.shape, impl.strides,
                                                         impl.offset, impl.dtype);
      copy->grad_fn = impl.grad_fn;
      copy->output_nr = impl.output_nr;
      copy->fw_grad = impl.fw_grad;
      copy->fw_level = impl.fw_level;
      copy->batch = impl.batch;
      data_ = Tensor(std::move(copy));
    } else {
      data_ = t;  // plain data: nothing in it can lead back to this node
    }
    return;
  }
  // An output would own its own node: keep the data only, and the history's coordinates.
  data_ = t.detach();
  output_nr_ = impl.output_nr;
  if (has_tangent(t)) {
    tangent_ = impl.fw_grad.detach();
    fw_level_ = impl.fw_level;
  }
}

Tensor SavedVariable::unpack(std::string_view op, const Node* owner) const {
  if (released_)
    fail(op,
         ": trying to backward through the graph a second time (its saved tensors were freed by "
         "the first backward); pass retain_graph=true to the first backward if you need a second");
  if (!saved_) return Tensor();
  if (data_.version() != version_)
    fail(op, ": a tensor of shape ", data_.shape(),
         " saved for backward was modified by an in-place operation (saved at version ", version_,
         ", now at version ", data_.version(), ")");
  if (!is_output_) {
    // A saved leaf comes back as the leaf itself when the backward is recorded (so the
    // gradient of the gradient reaches it), and as plain data otherwise or once it is gone.
    if (!leaf_.expired() && is_grad_enabled())
      if (auto leaf = leaf_.lock()) return Tensor(std::move(leaf));
    return data_;
  }
  const bool history = owner != nullptr && is_grad_enabled();
  const bool fw = tangent_.defined() && fw_level_ == detail::active_fw_level();
  if (!history && !fw) return data_;
  // A saved output, unpacked while its backward is recorded (create_graph) or inside its
  // forward-mode level: a fresh handle that has the node as grad_fn again (the node is
  // alive: it is running) and the tangent it had.
  Tensor r = data_.detach();
  auto& impl = *r.impl();
  if (history) {
    impl.grad_fn = std::const_pointer_cast<Node>(owner->shared_from_this());
    impl.output_nr = output_nr_;
  }
  if (fw) {
    impl.fw_grad = tangent_;
    impl.fw_level = fw_level_;
  }
  return r;
}

void SavedVariable::set_output_tangent(std::uint32_t output_nr, const Tensor& tangent,
                                       std::uint32_t level) {
  if (!saved_ || released_ || !is_output_ || output_nr_ != output_nr) return;
  tangent_ = tangent.detach();
  fw_level_ = level;
}

void SavedVariable::reset() {
  data_ = Tensor();
  leaf_.reset();
  tangent_ = Tensor();
  released_ = saved_;
}

// ---- Node -------------------------------------------------------------------------------

namespace {
thread_local std::uint64_t g_next_sequence_nr = 0;
// Graph inspection (see node.hpp): the module scope new nodes get, and the inspection modes.
// Plain thread-locals with constant initialisation: reading one is a single load.
thread_local const void* g_scope_tag = nullptr;
thread_local unsigned g_record_flags = 0;
}  // namespace

namespace detail {
unsigned record_flags() {
  return g_record_flags;
}
void set_record_flags(unsigned flags) {
  g_record_flags = flags;
}
const void* scope_tag() {
  return g_scope_tag;
}
void set_scope_tag(const void* tag) {
  g_scope_tag = tag;
}
}  // namespace detail

// The scope costs one thread-local load per node; the debug info exists only when an
// inspection mode is on (detect_anomaly captures the call stack here, at forward time).
Node::Node() : sequence_nr_(g_next_sequence_nr++), scope_tag_(g_scope_tag) {
  if (g_record_flags & detail::record_call_stack) [[unlikely]]
    mutable_debug_info().call_stack = detail::capture_call_stack();
}

NodeDebugInfo& Node::mutable_debug_info() {
  if (!debug_) debug_ = std::make_unique<NodeDebugInfo>();
  return *debug_;
}

// Destroying the last reference to a long chain of nodes would recurse once per node through
// next_edges_ and overflow the stack (an RNN unrolled over 100,000 steps). Nodes whose last
// owner is this one are moved to a per-thread list and destroyed iteratively instead.
Node::~Node() {
  thread_local std::vector<std::shared_ptr<Node>> pending;
  thread_local bool draining = false;
  for (auto& e : next_edges_) {
    if (e.fn && e.fn.use_count() == 1) pending.push_back(std::move(e.fn));
  }
  if (draining) return;
  draining = true;
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    n.reset();  // may push more nodes onto `pending`
  }
  draining = false;
}

Saved Node::save(const Tensor& t) {
  if (!t.defined()) return {};
  if (saved_.capacity() == 0) saved_.reserve(2);  // most ops save one or two tensors
  saved_.emplace_back(t, this);
  return {static_cast<std::uint32_t>(saved_.size() - 1)};
}

Tensor Node::saved(Saved s) const {
  if (!s.defined()) return Tensor();
  return saved_[s.index].unpack(name(), this);
}

void Node::release_saved() {
  for (auto& s : saved_) s.reset();
  release_state();
}

void Node::set_saved_output_tangent(std::uint32_t output_nr, const Tensor& tangent,
                                    std::uint32_t level) {
  for (auto& s : saved_) s.set_output_tangent(output_nr, tangent, level);
}

void Node::add_pre_hook(std::uint32_t output_nr, Hook hook) {
  pre_hooks_.emplace_back(output_nr, std::move(hook));
}

namespace {
void run_hook(const Hook& hook, Tensor& grad, std::string_view node) {
  if (!grad.defined()) return;
  Tensor r = hook(grad);
  if (!r.defined()) return;
  if (r.shape() != grad.shape() || r.dtype() != grad.dtype())
    fail("hook on ", node, ": a hook returned a gradient of shape ", r.shape(), " ",
         dtype_name(r.dtype()), " for a gradient of shape ", grad.shape(), " ",
         dtype_name(grad.dtype()));
  grad = std::move(r);
}
}  // namespace

void Node::run_pre_hooks(tensor_list& grads) {
  for (auto& [slot, hook] : pre_hooks_) {
    if (slot < grads.size()) run_hook(hook, grads[slot], name());
  }
}

// ---- AccumulateGrad ---------------------------------------------------------------------

AccumulateGrad::AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf)
    : strong_(leaf), leaf_(leaf) {
  mutable_outputs().push_back({leaf->shape, leaf->dtype});
}

void AccumulateGrad::run_pre_hooks(tensor_list& grads) {
  if (auto leaf = leaf_.lock())
    for (auto& hook : leaf->hooks) run_hook(hook, grads[0], "a leaf");
  // Then hooks on this graph's accumulator itself (viz::GradientRecorder observes a
  // parameter's gradient here, after the leaf's own hooks, without attaching anything to the
  // parameter that would outlive the graph).
  Node::run_pre_hooks(grads);
}

tensor_list AccumulateGrad::apply(tensor_list&& grads) {
  Tensor& g = grads[0];
  const std::shared_ptr<TensorImpl> leaf = leaf_.lock();
  if (!g.defined() || !leaf) return {};  // a leaf nobody holds: nobody can read its .grad()
  if (is_batched(g))
    fail("backward: inside func::vmap, a per-sample gradient reached the leaf of shape ",
         leaf->shape, ", which is not batched; .grad() cannot hold one gradient per sample: use ",
         "func::grad or func::vjp inside vmap, or call backward after vmap returns");
  Tensor& acc = leaf->grad;
  const bool stealable =
      g.impl().use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous();
  if (is_grad_enabled()) {
    // create_graph: .grad() keeps the gradient's graph (torch: grad = grad + new_grad, out of
    // place), so it can be differentiated again.
    if (!acc.defined()) {
      acc = stealable ? std::move(g) : g.clone();
    } else {
      acc = add(acc, g);
    }
    if (acc.requires_grad()) strong_.reset();  // see node.hpp: no cycle through .grad()
  } else if (!acc.defined()) {
    // Steal the incoming gradient when nothing else refers to it; otherwise copy, so that
    // a later in-place accumulation cannot write into another tensor's memory.
    acc = stealable ? std::move(g) : g.clone();
  } else if (acc.requires_grad()) {
    acc = add(acc, g);  // a .grad() left by create_graph: in-place would be refused
  } else {
    acc.add_(g);
  }
  for (auto& hook : leaf->post_accumulate_hooks) hook(Tensor(leaf));  // .grad() is complete
  return {};
}

// ---- recording --------------------------------------------------------------------------

Edge gradient_edge(const Tensor& t) {
  if (!t.defined()) return {};
  const auto& impl = t.impl();
  if (impl->grad_fn) return {impl->grad_fn, impl->output_nr};
  if (!impl->requires_grad) return {};
  std::shared_ptr<Node> acc = impl->grad_accumulator.lock();
  if (!acc) {
    acc = xgrad::detail::make_pooled<AccumulateGrad>(impl);
    impl->grad_accumulator = acc;
  }
  return {std::move(acc), 0};
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

namespace {
void set_history(const std::shared_ptr<Node>& node, Tensor& out, std::uint32_t nr) {
  node->mutable_outputs().push_back({out.shape(), out.dtype()});
  auto& impl = *out.impl();
  impl.grad_fn = node;
  impl.output_nr = nr;
}

// viz::record_data_inputs: remember the inputs that get no edge (data, labels), so that graph
// dumps can draw them. Runs only when that mode is on.
void note_data_input(Node& node, std::uint32_t slot, const Tensor& t) {
  if (!t.defined() || node.next_edges()[slot].valid()) return;
  node.mutable_debug_info().data_inputs.push_back({slot, t.shape(), t.dtype(), t.name(), t.impl()});
}
}  // namespace

void record(const std::shared_ptr<Node>& node, std::initializer_list<const Tensor*> inputs,
            std::initializer_list<Tensor*> outputs) {
  auto& edges = node->mutable_next_edges();
  edges.reserve(inputs.size());
  for (const Tensor* t : inputs) edges.push_back(gradient_edge(*t));
  if (g_record_flags & detail::record_data_inputs) [[unlikely]] {
    std::uint32_t slot = 0;
    for (const Tensor* t : inputs) note_data_input(*node, slot++, *t);
  }
  node->mutable_outputs().reserve(outputs.size());
  std::uint32_t nr = 0;
  for (Tensor* out : outputs) set_history(node, *out, nr++);
}

void record(std::shared_ptr<Node>&& node, std::initializer_list<const Tensor*> inputs,
            std::initializer_list<Tensor*> outputs) {
  Node* n = node.get();
  auto& edges = n->mutable_next_edges();
  edges.reserve(inputs.size());
  for (const Tensor* t : inputs) edges.push_back(gradient_edge(*t));
  if (g_record_flags & detail::record_data_inputs) [[unlikely]] {
    std::uint32_t slot = 0;
    for (const Tensor* t : inputs) note_data_input(*n, slot++, *t);
  }
  auto& metas = n->mutable_outputs();
  metas.reserve(outputs.size());
  std::uint32_t nr = 0;
  const std::size_t last = outputs.size();
  for (Tensor* out : outputs) {
    metas.push_back({out->shape(), out->dtype()});
    auto& impl = *out->impl();
    if (++nr == last) {
      impl.grad_fn = std::move(node);
    } else {
      impl.grad_fn = node;
    }
    impl.output_nr = nr - 1;
  }
}

void record(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
            std::vector<Tensor>& outputs) {
  auto& edges = node->mutable_next_edges();
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) edges.push_back(gradient_edge(t));
  if (g_record_flags & detail::record_data_inputs) [[unlikely]] {
    std::uint32_t slot = 0;
    for (const Tensor& t : inputs) note_data_input(*node, slot++, t);
  }
  node->mutable_outputs().reserve(outputs.size());
  std::uint32_t nr = 0;
  for (Tensor& out : outputs) set_history(node, out, nr++);
}

}  // namespace xgrad::autograd
