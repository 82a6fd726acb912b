// GradientRecorder: what the gradients of a graph looked like in one backward pass — per op
// output and per parameter: norm, min, max, fraction of zeros, NaN/Inf counts. Captured only
// when asked, through the core's gradient hooks; viz::to_dot draws them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/autograd/node.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::viz {

/// Summary of one gradient tensor (computed in double, over all entries).
struct GradientStats {
  double norm = 0;           // L2 norm (NaN when an entry is NaN)
  double min = 0, max = 0;   // over the non-NaN entries
  double zero_fraction = 0;  // entries exactly 0, as a fraction of numel
  std::int64_t numel = 0;
  std::int64_t nan_count = 0, inf_count = 0;
  /// Along the last axis ("units" of a [batch, features] activation): how many there are and
  /// how many got an all-zero gradient over the rest of the tensor. After a ReLU these are the
  /// units dead for the whole batch.
  std::int64_t units = 0, dead_units = 0;
  /// Arrival order in the backward pass (0 = first gradient the recorder saw).
  std::uint64_t order = 0;
  bool finite() const { return nan_count == 0 && inf_count == 0; }
};

/// Computes the statistics of a float tensor (any shape; an undefined tensor gives zeros).
GradientStats gradient_stats(const Tensor& grad);

/// Records the gradient reaching every op output and every parameter (leaf that requires
/// grad) of the graph that produced `outputs`. Create it after the forward pass and before
/// backward:
///
///     Tensor loss = cross_entropy(model(x), labels);
///     viz::GradientRecorder grads({loss});
///     loss.backward();
///     viz::write_dot("step.dot", {loss}, {.kind = viz::GraphKind::gradients, .gradients =
///     &grads});
///
/// It registers a hook on each node's output slots (Node::add_pre_hook, the mechanism behind
/// Tensor::register_hook / retain_grad; for parameters, on this graph's gradient accumulator,
/// so nothing stays attached to the parameter). The hooks only read. They outlive the recorder
/// harmlessly (they do nothing once it is gone) and die with the graph. The recorder keeps the
/// graph's nodes alive (not their saved tensors, which backward frees).
class GradientRecorder {
 public:
  explicit GradientRecorder(const std::vector<Tensor>& outputs);
  ~GradientRecorder();
  GradientRecorder(const GradientRecorder&) = delete;
  GradientRecorder& operator=(const GradientRecorder&) = delete;

  /// The gradient that reached output slot `slot` of `node` in the last backward (for an
  /// AccumulateGrad node: the parameter's gradient), or null when none did.
  const GradientStats* find(const autograd::Node* node, std::uint32_t slot = 0) const;
  /// The gradient that reached tensor `t` (an op output or a parameter of the graph), or null.
  const GradientStats* find(const Tensor& t) const;
  /// How many gradients were recorded.
  std::size_t size() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

/// Extra lines for an op's box in gradient graphs (viz::to_dot with gradients), computed from
/// the gradient the op's backward produced for its first input, d(loss)/d(input) — the place
/// where an op's effect on the gradient shows (a ReLU zeroes the gradient of dead units).
/// Returns the lines, each starting with '\n'; "" adds nothing.
using GradientAnnotation = std::function<std::string(const GradientStats& input_grad)>;

/// Registers `annotate` for every op whose Node::name() is `op_name`, replacing an earlier
/// registration ("" or an empty function removes it). The writer calls it only when the op's
/// first input comes from a node that feeds nothing else (so the gradient there is the op's
/// alone) and a GradientRecorder saw that gradient. Built in: "relu", "relu6", "hardtanh"
/// ("dead 3/128 units (2%)" and "zero grads 41%"). Thread-safe.
void register_gradient_annotation(const std::string& op_name, GradientAnnotation annotate);

/// The annotation registered for `op_name`, or an empty function.
GradientAnnotation gradient_annotation(const std::string& op_name);

}  // namespace xgrad::viz
