// Node: one recorded op of the graph — what its backward needs, and the edges to the nodes that
// produced its inputs. The engine (engine.hpp) walks nodes in reverse recording order.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::autograd {

/// The gradients a node's apply() takes and returns (one per output / per input edge): a
/// std::vector of Tensors whose memory comes from the small-block pool (storage.hpp), so that
/// the lists every backward makes per node ask the system for no memory (issue 14). It is a
/// std::vector in every other respect, and converts implicitly from and to
/// std::vector<Tensor> (copying, or moving the tensors out of an rvalue), so a custom
/// Function's backward may return either. Throws std::bad_alloc when memory runs out.
class tensor_list : public std::vector<Tensor, xgrad::detail::PoolAllocator<Tensor>> {
  using base = std::vector<Tensor, xgrad::detail::PoolAllocator<Tensor>>;

 public:
  using base::base;
  tensor_list() = default;
  tensor_list(const std::vector<Tensor>& v)  // NOLINT(google-explicit-constructor)
      : base(v.begin(), v.end()) {}
  tensor_list(std::vector<Tensor>&& v)  // NOLINT(google-explicit-constructor)
      : base(std::make_move_iterator(v.begin()), std::make_move_iterator(v.end())) {}
  operator std::vector<Tensor>() const& {  // NOLINT(google-explicit-constructor)
    return std::vector<Tensor>(begin(), end());
  }
  operator std::vector<Tensor>() && {  // NOLINT(google-explicit-constructor)
    return std::vector<Tensor>(std::make_move_iterator(begin()), std::make_move_iterator(end()));
  }
};

/// Where a gradient goes: input slot `input_nr` of node `fn`. An edge with a null fn means
/// "this input does not need a gradient".
struct Edge {
  std::shared_ptr<Node> fn;
  std::uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};

/// Shape and dtype of one output of a node: the gradient for that output must match it.
struct OutputMeta {
  Shape shape;
  Dtype dtype;
};

/// A node's edges and output metadata live in vectors whose memory comes from the small-block
/// pool (storage.hpp), as the node itself does: recording an op in steady state then asks
/// the system for no memory for them (issue 14). They behave as std::vector otherwise.
using edge_list = std::vector<Edge, xgrad::detail::PoolAllocator<Edge>>;
using output_meta_list = std::vector<OutputMeta, xgrad::detail::PoolAllocator<OutputMeta>>;

/// What graph inspection and anomaly detection keep about a node beyond what backward needs.
/// Allocated only when one of those modes was on while the node was recorded.
struct NodeDebugInfo {
  /// detect_anomaly (anomaly.hpp): return addresses of the forward call stack at record time.
  std::vector<void*> call_stack;
  /// viz::record_data_inputs (viz/dot.hpp): the inputs that need no gradient (data, labels),
  /// which have no edge, by input slot.
  struct DataInput {
    std::uint32_t slot = 0;
    Shape shape;
    Dtype dtype = Dtype::float32;
    std::string name;
    std::weak_ptr<TensorImpl> tensor;  // identity only: one input used twice is drawn once
  };
  std::vector<DataInput> data_inputs;
};

namespace detail {
/// Per-thread switches of the inspection features. All off by default: then recording a node
/// costs one thread-local load more than without them.
enum RecordFlag : unsigned {
  record_call_stack = 1u,   // Node() captures the call stack (detect_anomaly)
  check_gradients = 2u,     // backward checks every gradient for NaN/Inf (detect_anomaly)
  record_data_inputs = 4u,  // record() notes inputs without gradient (viz::record_data_inputs)
};
unsigned record_flags();
void set_record_flags(unsigned flags);
/// The tag new nodes on this thread get (Node::scope_tag): an opaque pointer the layer above
/// sets — nn::ScopeGuard sets the module a node is recorded in (nn/module_scope.hpp). Null by
/// default. A plain thread-local: reading it costs one load per node.
const void* scope_tag();
void set_scope_tag(const void* tag);
/// The calling thread's stack as return addresses (defined in anomaly.cpp).
std::vector<void*> capture_call_stack();
}  // namespace detail

/// A saved tensor, as PyTorch's SavedVariable: the tensor plus the version it had when saved.
/// An input is kept as it is (its history too: a backward run with create_graph differentiates
/// through it). A node's own output is kept without its grad_fn — else the node would own
/// itself — and gets it back on unpack when grad mode is on, so create_graph works through
/// saved outputs (tanh, exp, sigmoid, softmax) too. unpack() throws when the graph was freed
/// by an earlier backward or the tensor was modified in place since.
class SavedVariable {
 public:
  SavedVariable() = default;
  /// Saves `t` for `owner`; t is an output of owner when its grad_fn is owner.
  SavedVariable(const Tensor& t, const Node* owner);
  /// The saved data. `op` names the node in the error messages; `owner` is the node that
  /// saved it (needed to restore the history of a saved output).
  Tensor unpack(std::string_view op, const Node* owner = nullptr) const;
  void reset();
  bool defined() const { return saved_; }
  /// A saved output gets the tangent its tensor was given after it was saved (jvp_op runs
  /// after record_op), so that unpack restores it; inputs are kept whole and need nothing.
  void set_output_tangent(std::uint32_t output_nr, const Tensor& tangent, std::uint32_t level);
  /// For inspection (viz::memory_report): the data held and a saved output's tangent, as they
  /// are (no version check, no history restored); undefined once released or never saved.
  const Tensor& held_data() const { return data_; }
  const Tensor& held_tangent() const { return tangent_; }
  bool is_output() const { return is_output_; }
  bool released() const { return released_; }

 private:
  Tensor data_;
  // A saved leaf that requires grad: data_ is a detached alias and this the leaf itself,
  // weakly — the graph must not own its leaves, or backward(create_graph) would close a cycle
  // leaf → .grad() → its graph → this node → the leaf, and leak (torch's documented cycle).
  std::weak_ptr<TensorImpl> leaf_;
  Tensor tangent_;  // a saved output's forward-mode tangent (forward_ad.hpp), else undefined
  std::uint64_t version_ = 0;
  std::uint32_t output_nr_ = 0;
  std::uint32_t fw_level_ = 0;
  bool is_output_ = false;
  bool saved_ = false;
  bool released_ = false;
};

/// Handle of a tensor saved on a node with Node::save(); a default handle means "nothing
/// saved" and unpacks to an undefined tensor.
struct Saved {
  static constexpr std::uint32_t none = ~std::uint32_t{0};
  std::uint32_t index = none;
  bool defined() const { return index != none; }
};

/// Base class of every backward node. Subclasses keep their non-tensor state as fields, their
/// tensors in the node's store (save() / saved(), freed together by release_saved()), and
/// implement apply() — the op's vjp: given one gradient per output (undefined = zero), return
/// one gradient per input edge (undefined where the edge is invalid or the gradient is zero).
/// apply() runs with grad mode on exactly when the backward is recorded (create_graph), so it
/// must be written with xgrad ops whose own derivatives exist: then the backward is itself
/// differentiable, to any order. A node whose apply() is not (a raw kernel) says so with
/// once_differentiable(); the engine then refuses to differentiate through it.
class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// The forward op's name ("mul", "matmul", ...), shown in errors and graph dumps.
  virtual std::string_view name() const = 0;
  virtual tensor_list apply(tensor_list&& grads) = 0;
  /// Saves a tensor (an input or an output of this node) for backward; an undefined t gives
  /// an undefined handle. Call after the node is recorded (record_op's fill step), so that an
  /// output is known as one.
  Saved save(const Tensor& t);
  /// The tensor saved under `s` (undefined for an undefined handle). Throws after the graph
  /// was freed (backward without retain_graph) or when the tensor was modified in place.
  Tensor saved(Saved s) const;
  /// Frees every saved tensor (the engine calls it after backward unless retain_graph).
  void release_saved();
  /// The node's saved-tensor store, read-only, in save() order (a Saved handle's index is the
  /// position here): what memory inspection (viz::memory_report) lists. Entries stay after
  /// release_saved(), released and holding nothing.
  const std::vector<SavedVariable, xgrad::detail::PoolAllocator<SavedVariable>>& saved_variables()
      const {
    return saved_;
  }
  /// What release_saved() frees beyond the store: a node whose other state can hold tensors
  /// alive (checkpoint's function, which may capture them) overrides it. Ops never need it.
  virtual void release_state() {}
  /// forward_ad's set_tangent: output `output_nr` of this node now carries `tangent` at dual
  /// level `level`; a copy of that output saved earlier takes it too (forward-over-reverse
  /// through nodes that save their output: exp, tanh, softmax).
  void set_saved_output_tangent(std::uint32_t output_nr, const Tensor& tangent,
                                std::uint32_t level);
  /// True when apply() is made of raw kernels with no derivative of their own: create_graph
  /// through such a node throws (torch's once_differentiable) instead of giving wrong values.
  virtual bool once_differentiable() const { return false; }
  /// The leaf this node accumulates into (AccumulateGrad only, while that leaf is alive),
  /// else null.
  virtual TensorImpl* leaf() const { return nullptr; }
  /// True for a leaf's AccumulateGrad, alive or not.
  virtual bool is_accumulator() const { return false; }

  /// Recording order: later ops have larger numbers. Unique per thread.
  std::uint64_t sequence_nr() const { return sequence_nr_; }
  const edge_list& next_edges() const { return next_edges_; }
  edge_list& mutable_next_edges() { return next_edges_; }
  /// True when input i needs a gradient (its edge is valid).
  bool needs_input_grad(std::size_t i) const {
    return i < next_edges_.size() && next_edges_[i].valid();
  }
  const output_meta_list& outputs() const { return outputs_; }
  output_meta_list& mutable_outputs() { return outputs_; }

  /// Hooks on output slots (register_hook / retain_grad of non-leaf tensors).
  void add_pre_hook(std::uint32_t output_nr, Hook hook);
  /// Runs the hooks on the incoming gradients (may replace them). AccumulateGrad overrides it
  /// to run the leaf's own hooks.
  virtual void run_pre_hooks(tensor_list& grads);

  /// The thread's scope tag when the node was made (detail::scope_tag): opaque to autograd;
  /// nn::module_scope(node) reads it as the module the node was recorded in.
  const void* scope_tag() const { return scope_tag_; }
  /// Call stack / data inputs, when recorded under detect_anomaly or viz::record_data_inputs;
  /// else null.
  const NodeDebugInfo* debug_info() const { return debug_.get(); }
  NodeDebugInfo& mutable_debug_info();

 private:
  std::uint64_t sequence_nr_;
  edge_list next_edges_;
  output_meta_list outputs_;
  std::vector<std::pair<std::uint32_t, Hook>> pre_hooks_;
  std::vector<SavedVariable, xgrad::detail::PoolAllocator<SavedVariable>> saved_;
  const void* scope_tag_;                 // set by the layer above, never owned
  std::unique_ptr<NodeDebugInfo> debug_;  // null unless an inspection mode was on
};

/// The sink node of a leaf that requires grad: sums incoming gradients into leaf.grad().
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf);
  std::string_view name() const override { return "accumulate_grad"; }
  tensor_list apply(tensor_list&& grads) override;
  TensorImpl* leaf() const override { return leaf_.lock().get(); }
  bool is_accumulator() const override { return true; }
  void run_pre_hooks(tensor_list& grads) override;

 private:
  // A graph keeps its leaves alive, as torch's does (a graph drawn after its model is gone
  // still names the parameters) — until backward(create_graph) stores a .grad() that has a
  // graph of its own: that graph leads back here, so the strong reference would close the
  // cycle leaf → .grad() → graph → here → leaf, which torch documents as a leak. From then on
  // the leaf is held weakly; a gradient for a leaf nobody holds is dropped (nobody can read it).
  std::shared_ptr<TensorImpl> strong_;
  std::weak_ptr<TensorImpl> leaf_;
};

/// The edge a gradient for `t` should flow along: its grad_fn, its leaf accumulator (created
/// on first use and shared by the graph), or an invalid edge when t needs no gradient.
Edge gradient_edge(const Tensor& t);

/// True when grad mode is on and any of the tensors requires grad: then the op must record.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

/// Connects `node` to the graph: one edge per input (in order), the output metadata, and each
/// output's grad_fn / output_nr. Call only when any_requires_grad(inputs).
void record(const std::shared_ptr<Node>& node, std::initializer_list<const Tensor*> inputs,
            std::initializer_list<Tensor*> outputs);
void record(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
            std::vector<Tensor>& outputs);

/// record() for a node nobody else holds yet: the last output's grad_fn takes `node` over
/// (one reference count less per op than a copy). `node` is null afterwards when there was
/// an output.
void record(std::shared_ptr<Node>&& node, std::initializer_list<const Tensor*> inputs,
            std::initializer_list<Tensor*> outputs);

/// The one recording step of an op: when grad mode is on and an input requires grad, makes a
/// node N, connects it (record) and lets `fill(N&)` set its fields and save its tensors;
/// otherwise does nothing and costs one check. Returns the node, owned by the outputs' grad_fn
/// (valid while an output holds it), or null when not recorded.
///   record_op<ExpBackward>({&a}, {&out}, [&](ExpBackward& n) { n.y = n.save(out); });
template <class N, class Fill>
N* record_op(std::initializer_list<const Tensor*> inputs, std::initializer_list<Tensor*> outputs,
             Fill&& fill) {
  if (!any_requires_grad(inputs)) return nullptr;
  std::shared_ptr<N> owner = xgrad::detail::make_pooled<N>();
  N* node = owner.get();
  // An op without outputs keeps its node alive only for the fill step (as before).
  std::shared_ptr<Node> keep = outputs.size() == 0 ? owner : nullptr;
  record(std::shared_ptr<Node>(std::move(owner)), inputs, outputs);
  fill(*node);
  return node;
}
template <class N>
N* record_op(std::initializer_list<const Tensor*> inputs, std::initializer_list<Tensor*> outputs) {
  return record_op<N>(inputs, outputs, [](N&) {});
}

}  // namespace xgrad::autograd
