// Comparing two recorded steps (two models, two runs): which structure was added or removed,
// which shapes changed, and which gradients differ most — as data, as text and as one DOT
// picture. A recorded step is plain data (GraphRecord), so it outlives its graph.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "xgrad/tensor.hpp"
#include "xgrad/viz/gradients.hpp"

namespace xgrad::viz {

/// One node of a recorded step.
struct RecordedNode {
  /// What matches it to a node of another step: "fc2/linear#0" — the module path (none
  /// outside modules: "relu#1"), the op name and its occurrence among nodes of the same module
  /// and op, in recording order; "param:fc2.weight" for a parameter, "input#0" for an unnamed
  /// leaf.
  std::string key;
  std::string module;  ///< module path ("" outside modules)
  std::string label;   ///< op name, or the parameter's name
  Shape shape;         ///< (first) output's shape; a leaf's shape
  Dtype dtype = Dtype::float32;
  /// The L2 norm of the gradient that reached the node's (first) output, or -1 when none was
  /// recorded (no recorder, or no gradient reached it).
  double grad_norm = -1;
  std::vector<std::size_t> producers;  ///< indices (in GraphRecord::nodes) of its inputs' nodes
};

/// A recorded step: its nodes in recording order.
struct GraphRecord {
  std::string title;
  std::vector<RecordedNode> nodes;
};

/// Records the graph behind `outputs` (as collect_graph walks it), with the gradient norms a
/// GradientRecorder attached before backward saw (null: structure only). Throws xgrad::Error
/// for an undefined output.
GraphRecord record_graph(const std::vector<Tensor>& outputs, const GradientRecorder* gradients,
                         std::string title = "");

/// A node whose gradient differs between the two steps.
struct GradientChange {
  std::string key, module, label;
  double norm_a = 0, norm_b = 0;
  /// |norm_a − norm_b| / max(norm_a, norm_b): 0 when equal, 1 when one of them is zero.
  double relative = 0;
};

/// What differs between step a and step b. Nodes are matched by RecordedNode::key.
struct GraphDiff {
  std::vector<std::string> removed;  ///< keys in a only
  std::vector<std::string> added;    ///< keys in b only
  /// Keys in both whose shape or dtype differs: "fc2/linear#0: [64,128] float32 → [64,64]
  /// float32".
  std::vector<std::string> reshaped;
  /// Matched nodes with a gradient in both steps whose norms differ by more than
  /// `tolerance` (relative), most different first.
  std::vector<GradientChange> gradients;
  /// The modules touched by a structural change (added, removed or reshaped), in the order
  /// their first change appears in the steps' recording order ("" = outside modules): the
  /// first is the layer where the two steps start to differ.
  std::vector<std::string> modules;
  bool same() const {
    return removed.empty() && added.empty() && reshaped.empty() && gradients.empty();
  }
  /// A summary for people: "no difference", or the changed modules, then every change.
  std::string to_string(std::size_t max_rows = 20) const;
};

/// Compares two recorded steps. Gradient norms are compared only where both steps recorded
/// one and the shapes match; a relative difference at or below `tolerance` counts as equal
/// (0: exact). Nodes are matched by name (module, op, occurrence), not by position, so a layer
/// inserted early does not make every later node look changed. Never throws.
GraphDiff diff(const GraphRecord& a, const GraphRecord& b, double tolerance = 0);

/// One DOT picture of both steps: the union of their nodes, grouped by module; nodes only in
/// a are red and dashed ("removed"), nodes only in b green ("added"), reshaped ones orange
/// with both shapes, and the `top` nodes whose gradients differ most carry "Δ grad ‖·‖ 35%"
/// in a yellow fill. The graph's label names the two steps and summarises the diff.
std::string diff_to_dot(const GraphRecord& a, const GraphRecord& b, const GraphDiff& d,
                        std::size_t top = 10);

}  // namespace xgrad::viz
