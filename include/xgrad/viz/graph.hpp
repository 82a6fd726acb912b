// A recorded graph as plain data, for inspection: its nodes in recording order, who feeds
// whom, the inputs without gradient, and the folding of repeated structure. viz::to_dot draws
// it; tests and tools can read it directly. Nothing here writes or renders.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::autograd {
class Node;
}

namespace xgrad::viz {

/// What a node of the graph stands for.
enum class NodeKind {
  op,     ///< a recorded op (has a backward)
  param,  ///< a named leaf that requires grad ("fc1.weight")
  input,  ///< an unnamed leaf that requires grad
};

/// The kind of a node: leaves with a name are parameters.
NodeKind kind_of(const autograd::Node* n);

/// An input that needs no gradient (a batch of images, the labels), known only when the graph
/// was recorded under record_data_inputs (dot.hpp).
struct DataInput {
  std::string label;                                             ///< "images\n[64,784] float32"
  std::vector<std::pair<std::size_t, std::uint32_t>> consumers;  ///< (node index, input slot)
  Shape shape;
};

/// A run of `count` consecutive repeats of a block of `period` nodes starting at node `start`:
/// repeats [start + period·j, start + period·(j+1)) for j < count. The first and last repeats
/// stay visible; the ones between are folded.
struct Fold {
  std::size_t start = 0, period = 0, count = 0;
  std::size_t first_folded() const { return start + period; }
  std::size_t end_folded() const { return start + period * (count - 1); }
  std::size_t folded_repeats() const { return count - 2; }
};

/// The graph that produced some outputs.
struct Graph {
  /// Every node reachable from the outputs' grad_fns, in recording order (sequence_nr).
  std::vector<const autograd::Node*> nodes;
  /// Position of each node in `nodes`.
  std::unordered_map<const autograd::Node*, std::size_t> index;
  /// Per node: the indices of the nodes its valid next_edges point to (the producers of its
  /// inputs), in input order.
  std::vector<std::vector<std::size_t>> producers;
  /// Inputs without gradient (empty unless recorded under record_data_inputs).
  std::vector<DataInput> data;
  /// Per node: the fold it is hidden in, or -1.
  std::vector<int> group;
  /// The folds made by fold_graph, in the order they were chosen.
  std::vector<Fold> folds;
};

/// Collects the graph behind `outputs` (an explicit stack: 100,000-node chains are fine).
/// Outputs without grad_fn contribute nothing. Throws xgrad::Error for an undefined output.
Graph collect_graph(const std::vector<Tensor>& outputs);

/// How many nodes a drawing of `g` shows: unfolded nodes, one per fold, the inputs without
/// gradient that feed a visible node, and `outputs` output nodes.
std::size_t visible_count(const Graph& g, std::size_t outputs);

/// Folds runs of repeated structure (the same sequence of ops with the same output shapes and
/// dtypes, at least 3 repeats in a row: an RNN unrolled over time, a stack of identical
/// layers), the run that hides the most nodes first, until visible_count(g, outputs) <=
/// max_nodes or nothing repeats. Blocks are cut where the fewest edges cross between repeats.
/// max_nodes == 0 never folds.
void fold_graph(Graph& g, std::size_t outputs, std::size_t max_nodes);

/// What fold_graph compares: one id per node for its op name and output shapes and dtypes.
std::vector<int> fold_signatures(const Graph& g);

/// Folds the one run of repeated structure that hides the most nodes (as fold_graph chooses),
/// among the nodes not folded yet; false when nothing repeats (at least 3 times in a row).
/// `sig` is fold_signatures(g). What to_dot calls to fit a drawing into its size budget.
bool fold_once(Graph& g, const std::vector<int>& sig);

/// The position (from 1) at which backward() runs each node of `g` when started from
/// `outputs` — autograd::schedule, the engine's own rule; 0 for a node it would not reach.
std::vector<std::size_t> backward_order(const Graph& g, const std::vector<Tensor>& outputs);

}  // namespace xgrad::viz
