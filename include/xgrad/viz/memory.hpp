// What a recorded graph holds in memory for its backward: every tensor its nodes saved
// (autograd::Node::saved_variables), by module and by op, with shapes, bytes and — when the
// graph was recorded under detect_anomaly — the line of code that recorded it. The C++
// counterpart of JAX's print_saved_residuals; viz::to_dot colours nodes by it
// (DotOptions::memory).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::autograd {
class Node;
}

namespace xgrad::viz {

/// What a saved tensor is to the node that saved it.
enum class SavedKind {
  input,      ///< an input of the op (an activation, a batch of data, labels, indices)
  output,     ///< the op's own output (tanh, exp, sigmoid, softmax save theirs)
  parameter,  ///< a leaf that requires grad (a weight): the model keeps its storage anyway
  tangent,    ///< a forward-mode tangent kept with a saved output (forward_ad.hpp)
};

/// One tensor saved for backward.
struct SavedTensor {
  std::size_t node = 0;    ///< the node's position in recording order within the graph
                           ///< (as collect_graph numbers them: "op7" in to_dot's text)
  std::string op;          ///< the node's op name ("linear", "checkpoint")
  std::string module;      ///< the module path it was recorded in ("fc1"; "" outside modules)
  std::uint32_t slot = 0;  ///< its index in the node's store (the Saved handle's index)
  SavedKind kind = SavedKind::input;
  Shape shape;  ///< the saved view's shape
  Dtype dtype = Dtype::float32;
  std::int64_t bytes = 0;          ///< the view's own size: numel × element size
  std::int64_t storage_bytes = 0;  ///< the whole buffer it keeps alive (views share one)
  /// True for the first tensor (in recording order, then slot order) that holds its storage:
  /// its storage_bytes are counted in the totals. Later holders of the same storage (a weight
  /// saved by two ops, an activation saved by its producer as output and by its consumer as
  /// input, a view of it) have counted = false and `shared_with` set.
  bool counted = false;
  std::int64_t shared_with = -1;  ///< index in MemoryReport::tensors of the counted holder
  /// "model.cpp:42 (train_step())": where the user's code called the op, when the graph was
  /// recorded under autograd::detect_anomaly (call-site recording); else "".
  std::string source;
};

/// Saved bytes summed over a group of tensors (one module, or one op name).
struct MemoryGroup {
  std::string name;
  std::int64_t bytes = 0;             ///< counted storage bytes (each storage once)
  std::int64_t activation_bytes = 0;  ///< of which not parameters
  std::size_t tensors = 0;            ///< saved tensors in the group (shared ones included)
};

/// The saved tensors of a graph.
///
/// How bytes are counted: per storage (the buffer a tensor and all its views share), once.
/// A saved view keeps its whole storage alive, so it counts the storage's size, not its own;
/// a storage several nodes saved counts once, for the first of them in recording order.
/// Hence total_bytes is exactly what freeing the graph's saved tensors could release if
/// nothing else held them, and the groups (by_module, by_op) add up to total_bytes. Parameter
/// storages are counted too but reported apart (parameter_bytes): the model keeps them alive
/// anyway, so activation_bytes() is what the graph alone keeps alive — what
/// autograd::checkpoint can trade for recomputation.
struct MemoryReport {
  std::vector<SavedTensor> tensors;  ///< recording order, then slot order
  std::size_t nodes = 0;             ///< nodes in the graph
  std::size_t released_nodes = 0;    ///< nodes whose saved tensors backward already freed
  std::int64_t total_bytes = 0;
  std::int64_t parameter_bytes = 0;
  std::int64_t activation_bytes() const { return total_bytes - parameter_bytes; }
  std::vector<MemoryGroup> by_module;  ///< by module path ("" = outside modules), most bytes first
  std::vector<MemoryGroup> by_op;      ///< by op name, most bytes first
  /// Counted storage bytes per node (index as SavedTensor::node), for colouring a drawing.
  std::vector<std::int64_t> node_bytes;
  std::vector<std::int64_t> node_activation_bytes;

  /// A table for people: the totals, the modules and ops, then every saved tensor
  /// (at most `max_rows` of them; 0 = all).
  std::string to_string(std::size_t max_rows = 0) const;
};

/// The saved tensors of the graph that produced `outputs` (nodes reachable from their
/// grad_fns, collected as viz::collect_graph does). Call it after the forward pass and before
/// backward: backward frees them (unless retain_graph), and then they are reported as
/// released, with no bytes. A node made by autograd::checkpoint lists the block inputs it kept
/// (op "checkpoint"); the activations it recomputes in backward are not held and not listed.
/// Source: the saved residuals of JAX's jax.ad_checkpoint.print_saved_residuals, per node.
/// Throws xgrad::Error for an undefined output.
MemoryReport memory_report(const std::vector<Tensor>& outputs);
MemoryReport memory_report(const Tensor& loss);

/// "512 B", "196 KiB", "1.25 MiB" (binary units, three significant digits).
std::string format_bytes(std::int64_t bytes);

}  // namespace xgrad::viz
