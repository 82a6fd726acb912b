#include "xgrad/autograd/schedule.hpp"

#include <queue>
#include <unordered_map>

#include "xgrad/autograd/node.hpp"

namespace xgrad::autograd {

namespace {

struct ByLatest {
  bool operator()(const Node* a, const Node* b) const {
    return a->sequence_nr() < b->sequence_nr();
  }
};

}  // namespace

std::vector<Node*> schedule(const std::vector<Node*>& roots) {
  // Dependencies: for each reachable node, how many reachable edges point at it.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack;
  for (Node* r : roots)
    if (r != nullptr && deps.emplace(r, 0).second) stack.push_back(r);
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      auto [it, fresh] = deps.emplace(e.fn.get(), 0);
      ++it->second;
      if (fresh) stack.push_back(e.fn.get());
    }
  }

  std::vector<Node*> order;
  order.reserve(deps.size());
  std::priority_queue<Node*, std::vector<Node*>, ByLatest> ready;
  for (Node* r : roots) {
    if (r == nullptr) continue;
    int& d = deps.at(r);
    if (d == 0) {  // a root that another root feeds waits for it
      d = -1;      // queued
      ready.push(r);
    }
  }
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    order.push_back(n);
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      if (--deps.at(e.fn.get()) == 0) ready.push(e.fn.get());
    }
  }
  return order;
}

}  // namespace xgrad::autograd
