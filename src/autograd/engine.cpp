#include "xgrad/autograd/engine.hpp"

#include <memory>

#include "xgrad/autograd/anomaly.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/schedule.hpp"
#include "xgrad/ops/elementwise.hpp"

namespace xgrad {

namespace {

using autograd::Edge;
using autograd::Node;
using autograd::tensor_list;

struct NodeState {
  tensor_list buffer;     // one slot per output of the node, summed as gradients arrive
  bool needed = true;     // grad(): only nodes on a path to a requested input run
  bool captured = false;  // grad(): a requested input's edge points at this node
};

// What one backward pass needs besides the graph: kept per thread and reused, so that a
// backward in steady state allocates nothing of its own (issue 14). A backward that starts
// inside another (checkpoint's recomputation, a hook that calls grad()) takes a second one.
struct Workspace {
  autograd::Schedule plan;
  std::vector<NodeState> state;
  std::vector<Node*> roots;
  std::vector<std::pair<Edge, Tensor>> seeded;
};

class WorkspaceLease {
 public:
  WorkspaceLease() {
    auto& free = free_list();
    if (free.empty()) {
      ws_ = std::make_unique<Workspace>();
    } else {
      ws_ = std::move(free.back());
      free.pop_back();
    }
  }
  ~WorkspaceLease() {
    // Drop every tensor the pass still holds (seeds, buffers of nodes that never ran), keep
    // the memory.
    for (NodeState& st : ws_->state) st.buffer.clear();
    ws_->seeded.clear();
    ws_->roots.clear();
    auto& free = free_list();
    if (free.size() < 4) free.push_back(std::move(ws_));
  }
  WorkspaceLease(const WorkspaceLease&) = delete;
  WorkspaceLease& operator=(const WorkspaceLease&) = delete;
  Workspace& operator*() { return *ws_; }

 private:
  static std::vector<std::unique_ptr<Workspace>>& free_list() {
    thread_local std::vector<std::unique_ptr<Workspace>> free;
    return free;
  }
  std::unique_ptr<Workspace> ws_;
};

void accumulate(tensor_list& buffer, std::size_t slot, Tensor&& g) {
  if (buffer.size() <= slot) buffer.resize(slot + 1);
  if (!buffer[slot].defined()) {
    buffer[slot] = std::move(g);
  } else {
    buffer[slot] = add(buffer[slot], g);
  }
}

// Grad mode for the length of a backward: on exactly when the backward is recorded.
class GradModeScope {
 public:
  explicit GradModeScope(bool on) : prev_(is_grad_enabled()) { set_grad_enabled(on); }
  ~GradModeScope() { set_grad_enabled(prev_); }
  GradModeScope(const GradModeScope&) = delete;
  GradModeScope& operator=(const GradModeScope&) = delete;

 private:
  bool prev_;
};

// With create_graph the seed keeps its history (a gradient penalty may seed with a tensor
// that depends on parameters, as torch allows); without, it is plain data.
Tensor make_seed(const Tensor& out, const Tensor& seed, std::size_t i, bool create_graph) {
  if (seed.defined()) {
    if (seed.shape() != out.shape())
      fail("backward: seed ", i, " has shape ", seed.shape(), " but its output has shape ",
           out.shape());
    const Tensor s = create_graph ? seed : seed.detach();
    return s.dtype() == out.dtype() ? s : s.to(out.dtype());
  }
  if (out.numel() != 1)
    fail(
        "backward: a gradient seed can be implicitly created only for one-element outputs; "
        "pass a seed of shape ",
        out.shape());
  return ones(out.shape(), out.dtype());
}

// One backward pass. With `captures` non-empty it is a grad() call: the gradient reaching
// each captured edge is returned instead of accumulated into leaves.
std::vector<Tensor> run_backward(const std::vector<Tensor>& outputs,
                                 const std::vector<Tensor>& seeds, bool retain_graph,
                                 bool create_graph, const std::vector<Edge>* captures) {
  check(seeds.empty() || seeds.size() == outputs.size(), "backward: got ", seeds.size(),
        " seeds for ", outputs.size(), " outputs");
  WorkspaceLease lease;
  Workspace& ws = *lease;
  // The roots, each with its seed.
  std::vector<Node*>& roots = ws.roots;
  std::vector<std::pair<Edge, Tensor>>& seeded = ws.seeded;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    check(out.defined(), "backward: output ", i, " is undefined");
    Edge e = autograd::gradient_edge(out);
    if (!e.valid())
      fail("backward: output ", i, " of shape ", out.shape(),
           " does not require grad and has no grad_fn");
    Tensor s = make_seed(out, i < seeds.size() ? seeds[i] : Tensor(), i, create_graph);
    roots.push_back(e.fn.get());
    seeded.emplace_back(std::move(e), std::move(s));
  }

  // The order to run the nodes in (schedule.hpp): each node after every node that feeds it a
  // gradient, so a node's buffer is complete when its turn comes. Per-node state is a vector
  // in that order.
  autograd::Schedule& plan = ws.plan;
  autograd::schedule_into(roots, plan);
  const std::vector<Node*>& order = plan.order;
  std::vector<NodeState>& state = ws.state;
  if (state.size() < order.size()) state.resize(order.size());
  for (std::size_t k = 0; k < order.size(); ++k) {
    state[k].needed = true;
    state[k].captured = false;
  }
  auto state_of = [&](const Node* n) -> NodeState& { return state[*plan.position.find(n)]; };
  for (auto& [e, s] : seeded) accumulate(state_of(e.fn.get()).buffer, e.input_nr, std::move(s));

  // grad(): mark the captured nodes and every node with a path to one of them. A node's
  // inputs come after it in `order`, so walking it backwards decides children first.
  std::vector<Tensor> captured;
  if (captures) {
    captured.resize(captures->size());
    for (const Edge& e : *captures)
      if (std::size_t* pos = plan.position.find(e.fn.get())) state[*pos].captured = true;
    for (std::size_t k = order.size(); k-- > 0;) {
      Node* n = order[k];
      const bool captured_here = state[k].captured;
      bool needed = captured_here;
      if (!needed && !n->is_accumulator()) {
        for (const Edge& e : n->next_edges())
          if (e.valid() && state_of(e.fn.get()).needed) {
            needed = true;
            break;
          }
      }
      state[k].needed = needed && (!n->is_accumulator() || captured_here);
    }
  }

  // detect_anomaly (anomaly.hpp), read once per backward: when on, each node's gradients are
  // checked for NaN/Inf and errors name where the op was called.
  const bool anomaly = autograd::is_anomaly_enabled();
  // Backward formulas are recorded exactly when create_graph: they are written with xgrad ops,
  // so the gradients then have a graph of their own, differentiable again (to any order).
  GradModeScope grad_mode(create_graph);
  for (std::size_t k = 0; k < order.size(); ++k) {
    Node* node = order[k];
    NodeState& st = state[k];
    if (!st.needed) continue;  // grad(): off every path to a requested input
    // The node's gradients, in its buffer (kept, with its memory, for the next backward).
    tensor_list& grads = st.buffer;
    grads.resize(std::max<std::size_t>(grads.size(), node->outputs().size()));
    node->run_pre_hooks(grads);

    if (st.captured) {
      for (std::size_t idx = 0; idx < captures->size(); ++idx) {
        const Edge& c = (*captures)[idx];
        const std::size_t slot = c.input_nr;
        if (c.fn.get() == node && slot < grads.size() && grads[slot].defined())
          captured[idx] = captured[idx].defined() ? add(captured[idx], grads[slot]) : grads[slot];
      }
    }

    bool any = false;
    for (const Tensor& g : grads) any = any || g.defined();
    tensor_list out;
    const bool run = any && !(captures && node->is_accumulator());
    if (run) {
      if (create_graph && node->once_differentiable())
        fail(node->name(),
             ": its backward is marked once_differentiable, so backward with create_graph=true "
             "cannot record it; write the backward with differentiable xgrad ops");
      out = anomaly ? autograd::detail::apply_checked(*node, std::move(grads))
                    : node->apply(std::move(grads));
      if (!out.empty() && out.size() != node->next_edges().size())
        fail(node->name(), ": backward returned ", out.size(), " gradients for ",
             node->next_edges().size(), " inputs");
    }
    grads.clear();  // the node has run: its incoming gradients go now, as before
    if (!retain_graph) node->release_saved();

    const auto& edges = node->next_edges();
    for (std::size_t i = 0; i < edges.size() && i < out.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.valid() || !out[i].defined()) continue;
      const auto& meta = e.fn->outputs()[e.input_nr];
      if (out[i].shape() != meta.shape)
        fail(node->name(), ": backward produced a gradient of shape ", out[i].shape(),
             " for input ", i, ", which has shape ", meta.shape);
      accumulate(state_of(e.fn.get()).buffer, e.input_nr, std::move(out[i]));
    }
  }
  return captured;
}

}  // namespace

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& seeds,
              std::optional<bool> retain_graph, bool create_graph) {
  run_backward(outputs, seeds, retain_graph.value_or(create_graph), create_graph, nullptr);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& seeds, std::optional<bool> retain_graph,
                         bool create_graph, bool allow_unused) {
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    check(inputs[i].defined() && inputs[i].requires_grad(), "grad: input ", i,
          " does not require grad");
    edges.push_back(autograd::gradient_edge(inputs[i]));
  }
  std::vector<Tensor> result =
      run_backward(outputs, seeds, retain_graph.value_or(create_graph), create_graph, &edges);
  for (std::size_t i = 0; i < result.size(); ++i) {
    if (!result[i].defined() && !allow_unused)
      fail("grad: input ", i, " of shape ", inputs[i].shape(),
           " was not used to compute the outputs (pass allow_unused=true to get an undefined "
           "gradient)");
  }
  return result;
}

}  // namespace xgrad
