// Collecting a recorded graph as plain data (graph.hpp), and the engine's order over it.
#include "xgrad/viz/graph.hpp"

#include <algorithm>
#include <map>

#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/schedule.hpp"

namespace xgrad::viz {

using autograd::Node;

NodeKind kind_of(const Node* n) {
  if (const TensorImpl* leaf = n->leaf())
    return leaf->name.empty() ? NodeKind::input : NodeKind::param;
  return NodeKind::op;
}

Graph collect_graph(const std::vector<Tensor>& outputs) {
  Graph g;
  std::vector<const Node*> stack;
  auto visit = [&](const Node* n) {
    if (g.index.emplace(n, 0).second) stack.push_back(n);
  };
  for (const auto& t : outputs) {
    check(t.defined(), "to_dot: an output tensor is undefined");
    if (t.grad_fn()) visit(t.grad_fn().get());
  }
  while (!stack.empty()) {  // explicit stack: graphs can be 100,000 nodes deep
    const Node* n = stack.back();
    stack.pop_back();
    g.nodes.push_back(n);
    for (const auto& e : n->next_edges())
      if (e.valid()) visit(e.fn.get());
  }
  // Ids are positions in recording order within this graph, not raw sequence numbers: those
  // keep growing across the process, so the same program dumped twice would differ.
  std::sort(g.nodes.begin(), g.nodes.end(),
            [](const Node* a, const Node* b) { return a->sequence_nr() < b->sequence_nr(); });
  for (std::size_t i = 0; i < g.nodes.size(); ++i) g.index[g.nodes[i]] = i;
  g.producers.resize(g.nodes.size());
  g.group.assign(g.nodes.size(), -1);

  // Inputs without gradient, when they were recorded; one item per tensor still alive.
  std::map<const TensorImpl*, std::size_t> data_of;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    for (const auto& e : g.nodes[i]->next_edges())
      if (e.valid()) g.producers[i].push_back(g.index.at(e.fn.get()));
    const autograd::NodeDebugInfo* d = g.nodes[i]->debug_info();
    if (!d) continue;
    for (const auto& in : d->data_inputs) {
      auto alive = in.tensor.lock();
      std::size_t k = g.data.size();
      if (alive) {
        auto [it, fresh] = data_of.emplace(alive.get(), k);
        k = it->second;
        if (!fresh) {
          g.data[k].consumers.emplace_back(i, in.slot);
          continue;
        }
      }
      g.data.push_back({(in.name.empty() ? std::string("input") : in.name) + "\n" +
                            format_shape(in.shape) + " " + std::string(dtype_name(in.dtype)),
                        {{i, in.slot}},
                        in.shape});
    }
  }
  return g;
}

std::size_t visible_count(const Graph& g, std::size_t outputs) {
  std::size_t n = outputs + g.folds.size();
  for (int grp : g.group) n += grp < 0;
  for (const auto& d : g.data) {
    bool shown = false;
    for (auto& [c, slot] : d.consumers) shown = shown || g.group[c] < 0;
    n += shown;
  }
  return n;
}

std::vector<std::size_t> backward_order(const Graph& g, const std::vector<Tensor>& outputs) {
  std::vector<Node*> roots;
  for (const auto& t : outputs)
    if (t.grad_fn()) roots.push_back(t.grad_fn().get());
  std::vector<std::size_t> position(g.nodes.size(), 0);
  std::size_t next = 1;
  for (const Node* n : autograd::schedule(roots)) {
    auto it = g.index.find(n);
    if (it != g.index.end()) position[it->second] = next;
    ++next;
  }
  return position;
}

}  // namespace xgrad::viz
