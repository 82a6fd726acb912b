#include "xgrad/autograd/checkpoint.hpp"

#include <algorithm>
#include <memory>
#include <random>
#include <utility>

#include "xgrad/autograd/engine.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/random.hpp"

namespace xgrad {

namespace {

using autograd::Node;
using autograd::Saved;
using autograd::tensor_list;
using MultiFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

// Puts `state` into the default generator for its lifetime and the state it found back
// afterwards: the recomputation draws what the forward drew, and the caller's stream goes on
// as if nothing had been drawn (torch's fork_rng around the recomputation). A null state
// (preserve_rng_state = false) does nothing.
class GeneratorReplay {
 public:
  explicit GeneratorReplay(const std::mt19937_64* state) : active_(state != nullptr) {
    if (!active_) return;
    prev_ = default_generator();
    default_generator() = *state;
  }
  ~GeneratorReplay() {
    if (active_) default_generator() = prev_;
  }
  GeneratorReplay(const GeneratorReplay&) = delete;
  GeneratorReplay& operator=(const GeneratorReplay&) = delete;

 private:
  bool active_;
  std::mt19937_64 prev_;
};

// Stands for one input of the block in the recomputation. While the block's own backward runs
// it has no edge, so that backward stops here and the gradient reaching the input is kept,
// instead of walking on into the outer graph (which the outer backward is walking). Afterwards
// it is connected to the real input and passes gradients through: a graph recorded with
// create_graph then leads from the recomputed activations back to the input's history, so
// second derivatives with respect to the input (and whatever made it) are complete.
struct CheckpointInputBackward final : Node {
  Tensor captured;
  bool capturing = true;
  std::string_view name() const override { return "checkpoint_input"; }
  tensor_list apply(tensor_list&& grads) override {
    if (capturing) {
      captured = std::move(grads[0]);
      return {};
    }
    return {std::move(grads[0])};
  }
};

// What the engine needs of a backward root: its edge, shape and dtype, not its data. A
// non-leaf output of the recomputation is passed as a handle without storage, so that its
// data is freed before the block's backward runs (one activation less at the memory peak)
// unless a node saved it. A leaf (an input or a parameter returned as it is) stays itself:
// its gradient accumulator is found through the tensor.
Tensor root_handle(const Tensor& t) {
  if (!t.grad_fn()) return t;
  auto impl = std::make_shared<TensorImpl>(*t.impl());
  impl->storage.reset();
  return Tensor(std::move(impl));
}

struct CheckpointBackward final : Node {
  MultiFn fn;
  std::vector<Saved> inputs;
  std::unique_ptr<std::mt19937_64> rng_state;  // null without preserve_rng_state

  std::string_view name() const override { return "checkpoint"; }

  tensor_list apply(tensor_list&& grads) override {
    // The engine turns grad mode on in a backward exactly when it is recorded.
    const bool create_graph = is_grad_enabled();
    const std::size_t n = inputs.size();
    std::vector<Tensor> originals;
    originals.reserve(n);
    for (Saved s : inputs) originals.push_back(saved(s));  // throws after release_saved()

    // The recomputation's arguments: an input that needs a gradient gets a stand-in with the
    // same data; the others go in detached, as plain data.
    std::vector<Tensor> args(n);
    std::vector<std::shared_ptr<CheckpointInputBackward>> stops(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (!originals[i].defined()) continue;
      std::vector<Tensor> alias{originals[i].detach()};
      if (needs_input_grad(i)) {
        stops[i] = std::make_shared<CheckpointInputBackward>();
        autograd::record(stops[i], std::vector<Tensor>{}, alias);
      }
      args[i] = std::move(alias[0]);
    }

    std::vector<Tensor> outs;
    {
      GeneratorReplay replay(rng_state.get());
      enable_grad recording;
      outs = fn(args);
    }
    if (outs.size() != outputs().size())
      fail("checkpoint: the recomputation returned ", outs.size(), " tensors, the forward ",
           outputs().size(), " (fn must be deterministic)");

    std::vector<Tensor> roots, seeds;
    for (std::size_t k = 0; k < outs.size(); ++k) {
      if (!outs[k].defined() || outs[k].shape() != outputs()[k].shape)
        fail("checkpoint: output ", k, " of the recomputation differs from the forward's (shape ",
             outputs()[k].shape, "); fn must be deterministic");
      if (k < grads.size() && grads[k].defined() && outs[k].requires_grad()) {
        roots.push_back(root_handle(outs[k]));
        seeds.push_back(std::move(grads[k]));
      }
    }
    outs.clear();  // the recomputed outputs' data, unless a node saved it, goes now
    // Reentrant: a backward of its own, inside the outer one. It accumulates into the
    // parameters fn used, and ends at the stand-ins.
    if (!roots.empty()) backward(roots, seeds, std::nullopt, create_graph);

    tensor_list result(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (!stops[i]) continue;
      result[i] = std::move(stops[i]->captured);
      stops[i]->capturing = false;
      stops[i]->mutable_next_edges() = {autograd::gradient_edge(originals[i])};
    }
    return result;
  }

  // fn may capture tensors; the generator's state is 2.5 KB: both go with the saved inputs.
  void release_state() override {
    fn = nullptr;
    rng_state.reset();
  }
};

void check_outputs(const std::vector<Tensor>& outs) {
  check(!outs.empty(), "checkpoint: fn returned no tensor");
  for (std::size_t k = 0; k < outs.size(); ++k)
    check(outs[k].defined(), "checkpoint: fn returned an undefined tensor (output ", k, ")");
}

}  // namespace

std::vector<Tensor> checkpoint(const MultiFn& fn, const std::vector<Tensor>& inputs,
                               bool preserve_rng_state) {
  check(static_cast<bool>(fn), "checkpoint: fn is empty");
  if (!is_grad_enabled()) {
    std::vector<Tensor> outs = fn(inputs);
    check_outputs(outs);
    return outs;
  }
  auto node = std::make_shared<CheckpointBackward>();
  if (preserve_rng_state) node->rng_state = std::make_unique<std::mt19937_64>(default_generator());
  std::vector<Tensor> outs;
  if (autograd::any_requires_grad(inputs)) {
    no_grad guard;
    outs = fn(inputs);
    check_outputs(outs);
  } else {
    // Whether the result needs a graph depends on the parameters inside fn, which only a
    // recorded run tells: run it recorded, keep the result's data, and drop its graph (the
    // block's activations are freed here, so they are held only as long as one block's are in
    // backward). Torch's reentrant checkpoint runs fn unrecorded here, and the parameters
    // inside silently get no gradient.
    outs = fn(inputs);
    check_outputs(outs);
    bool any = false;
    for (const Tensor& o : outs) any = any || o.requires_grad();
    if (!any) return outs;  // nothing inside needs a gradient: a plain call
    for (Tensor& o : outs) o = o.detach();
  }
  // Recording makes each output a non-leaf of this node: an output that is an input, a tensor
  // that already requires grad (a captured parameter) or another output must not have its own
  // history rewritten, so it gets a fresh alias.
  std::vector<const TensorImpl*> taken;
  for (const Tensor& in : inputs)
    if (in.defined()) taken.push_back(in.impl().get());
  for (Tensor& o : outs) {
    if (o.requires_grad() || std::find(taken.begin(), taken.end(), o.impl().get()) != taken.end())
      o = o.detach();
    taken.push_back(o.impl().get());
  }
  autograd::record(node, inputs, outs);
  node->fn = fn;
  node->inputs.reserve(inputs.size());
  for (const Tensor& in : inputs) node->inputs.push_back(node->save(in));
  return outs;
}

Tensor checkpoint(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                  const std::vector<Tensor>& inputs, bool preserve_rng_state) {
  check(static_cast<bool>(fn), "checkpoint: fn is empty");
  // By value: the node calls it again during backward, after this frame is gone.
  MultiFn multi = [fn](const std::vector<Tensor>& xs) { return std::vector<Tensor>{fn(xs)}; };
  return checkpoint(multi, inputs, preserve_rng_state)[0];
}

}  // namespace xgrad
