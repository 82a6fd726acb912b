// Graphviz DOT export of a recorded graph: what the model computes (ops, parameters named from
// the module tree, grouped by module), optionally with the gradients of one backward pass or
// as the backward graph the engine runs. The text is written by xgrad; Graphviz is needed
// only to draw it (viz/render.hpp). docs/inspecting.md shows the pictures.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "xgrad/tensor.hpp"
#include "xgrad/viz/gradients.hpp"

namespace xgrad::viz {

/// What to draw.
enum class GraphKind {
  /// The forward graph: data flows from inputs and parameters through ops to the outputs.
  forward,
  /// The forward graph annotated with the gradients a GradientRecorder saw (DotOptions::
  /// gradients): norm, min and max per op output and parameter; NaN/Inf in red, vanishing
  /// gradients (norm below vanishing_threshold) in amber, dead units after each ReLU.
  gradients,
  /// The backward graph: the nodes the engine runs, numbered in the order it runs them, with
  /// edges in the direction gradients flow (annotated too when `gradients` is given).
  backward,
};

struct DotOptions {
  /// Graph title, shown as the graph's label.
  std::string title = "xgrad graph";
  GraphKind kind = GraphKind::forward;
  /// The recorder attached before backward; required for GraphKind::gradients.
  const GradientRecorder* gradients = nullptr;
  /// A gradient whose norm is below this is drawn as vanishing (amber).
  double vanishing_threshold = 1e-8;
  /// Above this many nodes, runs of repeated structure are folded (0: never fold, not even
  /// for max_pixels).
  std::size_t max_nodes = 500;
  /// One cluster per module (from Node::scope()); off: a flat graph.
  bool clusters = true;
  /// A legend of the node kinds and colours.
  bool legend = true;
  /// Colour every op by the bytes it saved for backward (viz::memory_report: activations,
  /// each storage counted once; white → dark red in proportion to the most one op saved) and
  /// add a "saves …" line.
  bool memory = false;
  /// The size budget of the picture, in pixels on its longer side as Graphviz renders it
  /// (PNG at its default 96 dpi; the SVG's width/height in points × 4/3, i.e. CSS pixels):
  /// repeated structure is folded until the estimated drawing fits (see to_dot), and the DOT
  /// text carries Graphviz's `size` so that the rendered picture never exceeds it (scaled
  /// down when the estimate was short). 0: no budget (max_nodes alone decides).
  double max_pixels = 4000;
};

/// DOT text for the graph that produced `outputs`.
///
/// Nodes: one rounded box per op (op name, output shape and dtype), one ellipse per parameter
/// (a leaf that requires grad and has a name: "fc1.weight", shape), one grey parallelogram per
/// input (an unnamed leaf that requires grad, or — recorded under record_data_inputs — a
/// tensor that needs no gradient, such as a batch of images or labels), one double octagon per
/// output (the loss). Edges point the way data flows and carry the shape flowing along them.
/// Ops recorded inside a module (Module::operator()) are grouped in a cluster per module path
/// ("fc1", nested "encoder" > "encoder.conv2"). Node ids follow recording order within the
/// graph ("op0", "leaf1", ...), so the same program gives the same text; names are escaped.
///
/// A graph with more than `max_nodes` nodes folds repeated structure: a run of consecutive
/// repeats of the same sequence of ops with the same shapes (an RNN unrolled over many steps,
/// a deep stack of identical blocks) becomes one box3d node labelled with the block and its
/// count (×N); the first and last repeats stay visible and the graph's label says what was
/// folded. Folding also continues, one run at a time (the one hiding the most nodes first),
/// while the drawing's estimated size exceeds `max_pixels`: the estimate lays the visible
/// nodes out on ranks by longest path, as dot does, and sizes each from its label (Helvetica
/// 10 pt, about 5.6 pt per character and 12 pt per line, dot's default node and rank
/// separations); edge labels go in xlabels when the graph is big or over budget, so they
/// take no rank of their own.
///
/// Throws xgrad::Error when an output is undefined, or for GraphKind::gradients without a
/// recorder.
std::string to_dot(const std::vector<Tensor>& outputs, const DotOptions& options = {});

/// Writes to_dot(outputs, options) to `path` with io::write_file_atomically (atomically;
/// straight into a device such as /dev/stdout).
void write_dot(const std::string& path, const std::vector<Tensor>& outputs,
               const DotOptions& options = {});

/// Writes the graph to `path` by its extension: DOT text for .dot/.gv (and any other name),
/// rendered with Graphviz for .svg, .png and .pdf (viz::render; throws when `dot` is not
/// installed). Atomic either way. What `xgrad-train --dot` and `xgrad-graph` call.
void write_graph(const std::string& path, const std::vector<Tensor>& outputs,
                 const DotOptions& options = {});

/// RAII guard, per thread: while it lives, ops also remember the inputs that need no gradient
/// (a batch of images, the labels), so that to_dot can draw them — normally the graph has no
/// trace of them. Costs a little per op while on; nothing when off.
class record_data_inputs {
 public:
  record_data_inputs();
  ~record_data_inputs();
  record_data_inputs(const record_data_inputs&) = delete;
  record_data_inputs& operator=(const record_data_inputs&) = delete;

 private:
  bool prev_;
};

}  // namespace xgrad::viz
