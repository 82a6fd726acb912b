// Folding repeated structure of a graph (graph.hpp): an RNN unrolled over many steps, a deep
// stack of identical blocks.
#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <string>

#include "xgrad/autograd/node.hpp"
#include "xgrad/viz/graph.hpp"

namespace xgrad::viz {

using autograd::Node;

namespace {

std::string shape_dtype(const autograd::OutputMeta& m) {
  return format_shape(m.shape) + " " + std::string(dtype_name(m.dtype));
}

constexpr std::size_t kMaxPeriod = 512;

std::vector<int> signatures(const Graph& g) {
  std::map<std::string, int> ids;
  std::vector<int> sig(g.nodes.size());
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node* n = g.nodes[i];
    std::string s = n->leaf() ? "leaf" : std::string(n->name());
    for (const auto& m : n->outputs()) {
      s += '|';
      s += shape_dtype(m);
    }
    sig[i] = ids.emplace(s, static_cast<int>(ids.size())).first->second;
  }
  return sig;
}

// How badly cutting the region [s, s + len) into blocks of `period` starting at s + phase
// splits the structure, over the first few blocks: first the number of edges between blocks
// (the natural cut — between RNN steps, between layers — has the fewest), then how far those
// edges are from going "last node of a block -> first node of the next" (a step's output
// feeding the next step's start).
std::size_t cut_score(const Graph& g, std::size_t s, std::size_t len, std::size_t period,
                      std::size_t phase) {
  const std::size_t begin = s + phase, end = std::min(s + len, begin + 3 * period);
  std::size_t crossing = 0, distance = 0;
  for (std::size_t c = begin; c < end; ++c)
    for (std::size_t q : g.producers[c])
      if (q >= begin && (q - begin) / period != (c - begin) / period) {
        ++crossing;
        distance += (c - begin) % period + (period - 1 - (q - begin) % period);
      }
  return crossing * 2 * period + distance;  // distance < 2 * period per edge
}

// The run of consecutive repeats whose folding removes the most nodes (at least 3 repeats:
// the first and last stay visible), among nodes not folded yet.
std::optional<Fold> best_fold(const Graph& g, const std::vector<int>& sig) {
  const std::size_t n = sig.size();
  std::optional<Fold> best;
  std::size_t best_saving = 0;
  for (std::size_t p = 1; p <= std::min(kMaxPeriod, n / 3); ++p) {
    std::size_t run = 0;
    for (std::size_t i = 0; i + p <= n; ++i) {
      const bool match = i + p < n && g.group[i] < 0 && g.group[i + p] < 0 && sig[i] == sig[i + p];
      if (match) {
        ++run;
        continue;
      }
      if (run >= 2 * p) {
        // Positions [i - run, i) match p later: a periodic region of run + p nodes.
        const std::size_t s = i - run, len = run + p;
        // Ties (an RNN step cut before its hidden projection or before its tanh is the same
        // cut to the graph): prefer blocks flush with the end of the run — its start often
        // includes the tail of a first step that differs, its end is where the steps stop.
        std::size_t best_phase = 0, best_score = std::numeric_limits<std::size_t>::max();
        for (std::size_t d = 0; d < p; ++d) {
          if ((len - d) / p < 3) break;
          const std::size_t score = 2 * cut_score(g, s, len, p, d) + (d == len % p ? 0 : 1);
          if (score < best_score) {
            best_score = score;
            best_phase = d;
          }
        }
        const std::size_t k = (len - best_phase) / p;
        const std::size_t saving = p * (k - 2);
        if (saving > best_saving) {
          best_saving = saving;
          best = Fold{s + best_phase, p, k};
        }
      }
      run = 0;
    }
  }
  return best;
}

}  // namespace

std::vector<int> fold_signatures(const Graph& g) {
  return signatures(g);
}

bool fold_once(Graph& g, const std::vector<int>& sig) {
  auto f = best_fold(g, sig);
  if (!f) return false;
  const int id = static_cast<int>(g.folds.size());
  for (std::size_t i = f->first_folded(); i < f->end_folded(); ++i) g.group[i] = id;
  g.folds.push_back(*f);
  return true;
}

void fold_graph(Graph& g, std::size_t outputs, std::size_t max_nodes) {
  if (max_nodes == 0 || visible_count(g, outputs) <= max_nodes) return;
  const std::vector<int> sig = signatures(g);
  while (visible_count(g, outputs) > max_nodes) {
    auto f = best_fold(g, sig);
    if (!f) break;
    const int id = static_cast<int>(g.folds.size());
    for (std::size_t i = f->first_folded(); i < f->end_folded(); ++i) g.group[i] = id;
    g.folds.push_back(*f);
  }
}

}  // namespace xgrad::viz
