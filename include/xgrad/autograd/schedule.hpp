// The backward schedule: the one rule for the order in which the engine runs a graph's nodes.
// backward()/grad() (engine.cpp) and the graph writer's backward view (viz) both call it, so
// what a picture numbers is what the engine does.
#pragma once

#include <vector>

namespace xgrad::autograd {

class Node;

/// Every node reachable from `roots` (through valid next_edges), in the order backward() runs
/// them: a node runs once every node that feeds it a gradient (every reachable node with an
/// edge to it) has run; among the nodes ready at a time, the one recorded latest (largest
/// sequence_nr) runs first — as PyTorch's engine orders its ready queue. Each node appears
/// once; duplicate roots are ignored. Iterative (an explicit stack and a binary heap), so a
/// 100,000-node chain needs no deep recursion; O(V log V + E).
/// Shapes: none (pure graph structure). Throws nothing; null roots are skipped.
std::vector<Node*> schedule(const std::vector<Node*>& roots);

}  // namespace xgrad::autograd
