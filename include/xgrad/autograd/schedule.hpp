// The backward schedule: the one rule for the order in which the engine runs a graph's nodes.
// backward()/grad() (engine.cpp) and the graph writer's backward view (viz) both call it, so
// what a picture numbers is what the engine does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace xgrad::autograd {

class Node;

/// A map from node to a number (its position in a schedule), open-addressed in one flat
/// array: finding a node costs a multiply and a probe or two, and clear() keeps the array, so
/// a map reused for the next backward allocates nothing once it has grown (issue 14: no
/// per-node hash-map allocation in the engine).
class NodePositions {
 public:
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  /// The number stored for n. Throws std::out_of_range when n is not in the map.
  std::size_t at(const Node* n) const;
  /// The number stored for n, or null when n is not in the map.
  std::size_t* find(const Node* n);
  const std::size_t* find(const Node* n) const;
  /// Inserts n with `value` unless present; returns its slot and whether it was inserted.
  /// n must not be null.
  std::pair<std::size_t*, bool> emplace(const Node* n, std::size_t value);
  /// Empties the map, keeping its memory.
  void clear();

 private:
  std::size_t index_of(const Node* n) const;
  void grow();
  std::vector<const Node*> keys_;  // null: empty slot; size a power of two (or 0)
  std::vector<std::size_t> values_;
  std::size_t size_ = 0;
  unsigned shift_ = 64;
};

/// The nodes a backward pass runs, in order, and each node's position in that order (so the
/// engine keeps its per-node state in a vector).
struct Schedule {
  std::vector<Node*> order;
  NodePositions position;  ///< index into `order`
  /// Work space of schedule_into (its stack and heap), kept so that a reused Schedule
  /// allocates nothing.
  std::vector<Node*> scratch;
};

/// Every node reachable from `roots` (through valid next_edges), in the order backward() runs
/// them: a node runs once every node that feeds it a gradient (every reachable node with an
/// edge to it) has run; among the nodes ready at a time, the one recorded latest (largest
/// sequence_nr) runs first — as PyTorch's engine orders its ready queue. Each node appears
/// once; duplicate roots are ignored. Iterative (an explicit stack and a binary heap), so a
/// 100,000-node chain needs no deep recursion; O(V log V + E).
/// Shapes: none (pure graph structure). Throws nothing but std::bad_alloc; null roots are
/// skipped.
Schedule schedule(const std::vector<Node*>& roots);
/// As schedule(), written into `out` (its previous contents dropped, its memory reused).
void schedule_into(const std::vector<Node*>& roots, Schedule& out);

}  // namespace xgrad::autograd
