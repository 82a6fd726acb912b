#include "xgrad/viz/gradients.hpp"

#include <cmath>
#include <limits>
#include <set>
#include <unordered_map>

namespace xgrad::viz {

GradientStats gradient_stats(const Tensor& grad) {
  GradientStats s;
  if (!grad.defined() || !is_floating(grad.dtype())) return s;
  const Tensor c = grad.contiguous();
  const std::int64_t n = c.numel();
  s.numel = n;
  s.units = c.dim() > 0 ? c.shape().back() : 1;
  dispatch_floating(c.dtype(), "gradient_stats", [&]<class T>() {
    const T* p = c.data_ptr<T>();
    double sq = 0, lo = std::numeric_limits<double>::infinity(), hi = -lo;
    std::int64_t zeros = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double v = static_cast<double>(p[i]);
      if (std::isnan(v)) {
        ++s.nan_count;
        continue;
      }
      if (std::isinf(v)) ++s.inf_count;
      zeros += v == 0;
      sq += v * v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    s.norm = s.nan_count ? std::numeric_limits<double>::quiet_NaN() : std::sqrt(sq);
    s.min = lo <= hi ? lo : 0;
    s.max = lo <= hi ? hi : 0;
    s.zero_fraction = n ? static_cast<double>(zeros) / static_cast<double>(n) : 0;
    // Units along the last axis whose gradient is zero everywhere else.
    if (s.units > 0 && n > 0) {
      const std::int64_t rows = n / s.units;
      for (std::int64_t u = 0; u < s.units; ++u) {
        bool dead = true;
        for (std::int64_t r = 0; r < rows && dead; ++r) dead = p[r * s.units + u] == T(0);
        s.dead_units += dead;
      }
    }
    return 0;
  });
  return s;
}

struct GradientRecorder::State {
  std::vector<std::shared_ptr<autograd::Node>> nodes;  // keeps the graph's nodes alive
  std::unordered_map<const autograd::Node*, std::vector<GradientStats>> stats;
  std::unordered_map<const autograd::Node*, std::vector<bool>> seen;
  std::uint64_t arrivals = 0;
  std::size_t count = 0;
};

GradientRecorder::GradientRecorder(const std::vector<Tensor>& outputs)
    : state_(std::make_shared<State>()) {
  // Every node reachable from the outputs (explicit stack: graphs can be 100,000 deep).
  std::set<const autograd::Node*> visited;
  std::vector<std::shared_ptr<autograd::Node>> stack;
  for (const Tensor& t : outputs) {
    check(t.defined(), "GradientRecorder: an output tensor is undefined");
    if (t.grad_fn() && visited.insert(t.grad_fn().get()).second) stack.push_back(t.grad_fn());
  }
  while (!stack.empty()) {
    std::shared_ptr<autograd::Node> n = std::move(stack.back());
    stack.pop_back();
    for (const auto& e : n->next_edges())
      if (e.valid() && visited.insert(e.fn.get()).second) stack.push_back(e.fn);
    state_->nodes.push_back(std::move(n));
  }
  std::weak_ptr<State> weak = state_;
  for (auto& n : state_->nodes) {
    const autograd::Node* key = n.get();
    const std::size_t slots = n->outputs().size();
    state_->stats[key].resize(slots);
    state_->seen[key].assign(slots, false);
    for (std::uint32_t slot = 0; slot < slots; ++slot) {
      n->add_pre_hook(slot, [weak, key, slot](const Tensor& g) -> Tensor {
        if (auto st = weak.lock()) {
          GradientStats s = gradient_stats(g);
          s.order = st->arrivals++;
          st->stats[key][slot] = s;
          if (!st->seen[key][slot]) {
            st->seen[key][slot] = true;
            ++st->count;
          }
        }
        return Tensor();  // observe only
      });
    }
  }
}

GradientRecorder::~GradientRecorder() = default;

const GradientStats* GradientRecorder::find(const autograd::Node* node, std::uint32_t slot) const {
  auto it = state_->seen.find(node);
  if (it == state_->seen.end() || slot >= it->second.size() || !it->second[slot]) return nullptr;
  return &state_->stats.at(node)[slot];
}

const GradientStats* GradientRecorder::find(const Tensor& t) const {
  if (!t.defined()) return nullptr;
  if (t.grad_fn()) return find(t.grad_fn().get(), t.output_nr());
  auto acc = t.impl()->grad_accumulator.lock();
  return acc ? find(acc.get(), 0) : nullptr;
}

std::size_t GradientRecorder::size() const {
  return state_->count;
}

}  // namespace xgrad::viz
