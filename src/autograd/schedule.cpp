#include "xgrad/autograd/schedule.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <utility>

#include "xgrad/autograd/node.hpp"

namespace xgrad::autograd {

// ---- NodePositions ----------------------------------------------------------------------

// Fibonacci hashing of the address: the multiply spreads the (aligned, clustered) pointer
// bits over the top bits, which index the table. Linear probing; load factor at most 1/2.
std::size_t NodePositions::index_of(const Node* n) const {
  const auto h =
      static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(n)) * 0x9E3779B97F4A7C15ull;
  return static_cast<std::size_t>(h >> shift_);
}

const std::size_t* NodePositions::find(const Node* n) const {
  if (size_ == 0 || n == nullptr) return nullptr;
  const std::size_t mask = keys_.size() - 1;
  for (std::size_t i = index_of(n);; i = (i + 1) & mask) {
    if (keys_[i] == n) return &values_[i];
    if (keys_[i] == nullptr) return nullptr;
  }
}

std::size_t* NodePositions::find(const Node* n) {
  return const_cast<std::size_t*>(std::as_const(*this).find(n));
}

std::size_t NodePositions::at(const Node* n) const {
  const std::size_t* v = find(n);
  if (v == nullptr) throw std::out_of_range("autograd::NodePositions::at: node not scheduled");
  return *v;
}

void NodePositions::grow() {
  std::vector<const Node*> old_keys = std::move(keys_);
  std::vector<std::size_t> old_values = std::move(values_);
  const std::size_t cap = old_keys.empty() ? 64 : old_keys.size() * 2;
  keys_.assign(cap, nullptr);
  values_.assign(cap, 0);
  shift_ = 64 - static_cast<unsigned>(std::countr_zero(cap));
  const std::size_t mask = cap - 1;
  for (std::size_t j = 0; j < old_keys.size(); ++j) {
    if (old_keys[j] == nullptr) continue;
    std::size_t i = index_of(old_keys[j]);
    while (keys_[i] != nullptr) i = (i + 1) & mask;
    keys_[i] = old_keys[j];
    values_[i] = old_values[j];
  }
}

std::pair<std::size_t*, bool> NodePositions::emplace(const Node* n, std::size_t value) {
  if ((size_ + 1) * 2 > keys_.size()) grow();
  const std::size_t mask = keys_.size() - 1;
  std::size_t i = index_of(n);
  for (; keys_[i] != nullptr; i = (i + 1) & mask)
    if (keys_[i] == n) return {&values_[i], false};
  keys_[i] = n;
  values_[i] = value;
  ++size_;
  return {&values_[i], true};
}

void NodePositions::clear() {
  if (size_ == 0) return;
  std::fill(keys_.begin(), keys_.end(), nullptr);
  size_ = 0;
}

// ---- schedule ---------------------------------------------------------------------------

namespace {

struct ByLatest {
  bool operator()(const Node* a, const Node* b) const {
    return a->sequence_nr() < b->sequence_nr();
  }
};

}  // namespace

void schedule_into(const std::vector<Node*>& roots, Schedule& out) {
  // Dependencies: for each reachable node, how many reachable edges point at it. Once a node
  // is scheduled its entry holds its position instead (one map does both jobs).
  out.order.clear();
  NodePositions& deps = out.position;
  deps.clear();
  constexpr std::size_t kQueued = static_cast<std::size_t>(-1);
  std::vector<Node*>& stack = out.scratch;
  stack.clear();
  for (Node* r : roots)
    if (r != nullptr && deps.emplace(r, 0).second) stack.push_back(r);
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      auto [d, fresh] = deps.emplace(e.fn.get(), 0);
      ++*d;
      if (fresh) stack.push_back(e.fn.get());
    }
  }

  // The ready queue: a binary heap on the (now empty) scratch vector.
  std::vector<Node*>& ready = stack;
  for (Node* r : roots) {
    if (r == nullptr) continue;
    std::size_t& d = *deps.find(r);
    if (d == 0) {  // a root that another root feeds waits for it
      d = kQueued;
      ready.push_back(r);
      std::push_heap(ready.begin(), ready.end(), ByLatest{});
    }
  }
  while (!ready.empty()) {
    std::pop_heap(ready.begin(), ready.end(), ByLatest{});
    Node* n = ready.back();
    ready.pop_back();
    *deps.find(n) = out.order.size();
    out.order.push_back(n);
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      std::size_t& d = *deps.find(e.fn.get());
      if (--d == 0) {
        d = kQueued;
        ready.push_back(e.fn.get());
        std::push_heap(ready.begin(), ready.end(), ByLatest{});
      }
    }
  }
}

Schedule schedule(const std::vector<Node*>& roots) {
  Schedule out;
  schedule_into(roots, out);
  return out;
}

}  // namespace xgrad::autograd
