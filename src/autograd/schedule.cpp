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

Schedule schedule(const std::vector<Node*>& roots) {
  // Dependencies: for each reachable node, how many reachable edges point at it. Once a node
  // is scheduled its entry holds its position instead (one map does both jobs).
  Schedule out;
  std::unordered_map<const Node*, std::size_t>& deps = out.position;
  constexpr std::size_t kQueued = static_cast<std::size_t>(-1);
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

  out.order.reserve(deps.size());
  std::priority_queue<Node*, std::vector<Node*>, ByLatest> ready;
  for (Node* r : roots) {
    if (r == nullptr) continue;
    std::size_t& d = deps.at(r);
    if (d == 0) {  // a root that another root feeds waits for it
      d = kQueued;
      ready.push(r);
    }
  }
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    deps.at(n) = out.order.size();
    out.order.push_back(n);
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      std::size_t& d = deps.at(e.fn.get());
      if (--d == 0) {
        d = kQueued;
        ready.push(e.fn.get());
      }
    }
  }
  return out;
}

}  // namespace xgrad::autograd
