// Comparing two recorded steps (diff.hpp).
#include "xgrad/viz/diff.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "viz/dot_style.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/nn/module_scope.hpp"
#include "xgrad/viz/graph.hpp"

namespace xgrad::viz {

using namespace dot_style;  // NOLINT(google-build-using-namespace): the writer's vocabulary

GraphRecord record_graph(const std::vector<Tensor>& outputs, const GradientRecorder* gradients,
                         std::string title) {
  const Graph g = collect_graph(outputs);
  GraphRecord r;
  r.title = std::move(title);
  std::map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const autograd::Node* n = g.nodes[i];
    RecordedNode rn;
    rn.module = std::string(nn::scope_path(*n));
    if (const TensorImpl* leaf = n->leaf()) {
      rn.label = leaf->name.empty() ? "input" : leaf->name;
      rn.shape = leaf->shape;
      rn.dtype = leaf->dtype;
      rn.key = leaf->name.empty() ? "input" : "param:" + leaf->name;
    } else {
      rn.label = std::string(n->name());
      if (!n->outputs().empty()) {
        rn.shape = n->outputs()[0].shape;
        rn.dtype = n->outputs()[0].dtype;
      }
      rn.key = rn.module.empty() ? rn.label : rn.module + "/" + rn.label;
    }
    if (rn.key.rfind("param:", 0) != 0) rn.key += "#" + std::to_string(seen[rn.key]++);
    if (gradients)
      if (const GradientStats* s = gradients->find(n, 0)) rn.grad_norm = s->norm;
    rn.producers = g.producers[i];
    r.nodes.push_back(std::move(rn));
  }
  return r;
}

namespace {

std::string shape_text(const RecordedNode& n) {
  return format_shape(n.shape) + " " + std::string(dtype_name(n.dtype));
}

std::unordered_map<std::string, std::size_t> by_key(const GraphRecord& r) {
  std::unordered_map<std::string, std::size_t> m;
  for (std::size_t i = 0; i < r.nodes.size(); ++i) m.emplace(r.nodes[i].key, i);
  return m;
}

}  // namespace

GraphDiff diff(const GraphRecord& a, const GraphRecord& b, double tolerance) {
  GraphDiff d;
  const auto ka = by_key(a), kb = by_key(b);
  // Structural changes in recording order: a's nodes first (removed or reshaped), then b's
  // (added); each change notes its module, first appearance first.
  std::vector<std::pair<std::size_t, std::string>> touched;  // (position, module)
  auto touch = [&](std::size_t pos, const std::string& module) {
    touched.emplace_back(pos, module);
  };
  for (std::size_t i = 0; i < a.nodes.size(); ++i) {
    const RecordedNode& na = a.nodes[i];
    auto it = kb.find(na.key);
    if (it == kb.end()) {
      d.removed.push_back(na.key);
      touch(i, na.module);
      continue;
    }
    const RecordedNode& nb = b.nodes[it->second];
    if (na.shape != nb.shape || na.dtype != nb.dtype) {
      d.reshaped.push_back(na.key + ": " + shape_text(na) + " → " + shape_text(nb));
      touch(std::min(i, it->second), na.module);
      continue;
    }
    if (na.grad_norm >= 0 && nb.grad_norm >= 0) {
      const double hi = std::max(na.grad_norm, nb.grad_norm);
      const double rel = hi > 0           ? std::fabs(na.grad_norm - nb.grad_norm) / hi
                         : std::isnan(hi) ? 1.0
                                          : 0.0;
      if (rel > tolerance || std::isnan(na.grad_norm) != std::isnan(nb.grad_norm))
        d.gradients.push_back({na.key, na.module, na.label, na.grad_norm, nb.grad_norm, rel});
    }
  }
  for (std::size_t j = 0; j < b.nodes.size(); ++j)
    if (!ka.count(b.nodes[j].key)) {
      d.added.push_back(b.nodes[j].key);
      touch(j, b.nodes[j].module);
    }
  std::stable_sort(touched.begin(), touched.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  for (const auto& [pos, module] : touched)
    if (std::find(d.modules.begin(), d.modules.end(), module) == d.modules.end())
      d.modules.push_back(module);
  std::stable_sort(
      d.gradients.begin(), d.gradients.end(),
      [](const GradientChange& x, const GradientChange& y) { return x.relative > y.relative; });
  return d;
}

std::string GraphDiff::to_string(std::size_t max_rows) const {
  if (same()) return "no difference: the same structure, shapes and gradient norms\n";
  std::ostringstream os;
  if (!modules.empty()) {
    os << "structure differs in module" << (modules.size() == 1 ? "" : "s") << ":";
    for (const auto& m : modules) os << " " << (m.empty() ? "(no module)" : m);
    os << " (first difference: " << (modules[0].empty() ? "(no module)" : modules[0]) << ")\n";
  } else {
    os << "the same structure and shapes\n";
  }
  auto list = [&](const char* title, const std::vector<std::string>& v) {
    if (v.empty()) return;
    os << title << " (" << v.size() << "):\n";
    for (std::size_t k = 0; k < v.size() && (max_rows == 0 || k < max_rows); ++k)
      os << "  " << v[k] << "\n";
    if (max_rows != 0 && v.size() > max_rows) os << "  … " << v.size() - max_rows << " more\n";
  };
  list("removed (only in the first step)", removed);
  list("added (only in the second step)", added);
  list("shape changed", reshaped);
  if (!gradients.empty()) {
    os << "gradients that differ most (" << gradients.size() << " differ):\n";
    for (std::size_t k = 0; k < gradients.size() && (max_rows == 0 || k < max_rows); ++k) {
      const GradientChange& c = gradients[k];
      char line[256];
      std::snprintf(line, sizeof line, "  %s: grad ‖·‖ %.4g → %.4g (%.1f%%)\n", c.key.c_str(),
                    c.norm_a, c.norm_b, 100.0 * c.relative);
      os << line;
    }
  }
  return os.str();
}

std::string diff_to_dot(const GraphRecord& a, const GraphRecord& b, const GraphDiff& d,
                        std::size_t top) {
  const auto ka = by_key(a), kb = by_key(b);
  std::map<std::string, std::string> reshaped;
  for (const auto& r : d.reshaped) reshaped.emplace(r.substr(0, r.find(": ")), r);
  std::map<std::string, const GradientChange*> changed;
  for (std::size_t k = 0; k < d.gradients.size() && k < top; ++k)
    changed.emplace(d.gradients[k].key, &d.gradients[k]);

  // The union: b's nodes in order, a's removed nodes after them; ids by key.
  struct Drawn {
    std::string key, module, attrs;
  };
  std::vector<Drawn> nodes;
  std::map<std::string, std::string> id;
  auto add = [&](const RecordedNode& n, bool in_a, bool in_b) {
    const std::string nid = "n" + std::to_string(nodes.size());
    id.emplace(n.key, nid);
    std::string label = n.label + "\n" + shape_text(n);
    const char* fill = n.key.rfind("param:", 0) == 0 ? kParamColor : kOpColor;
    GradLook look;
    std::string extra;
    if (!in_b) {
      label += "\nremoved";
      fill = "#f8d0cc";
      look.dashed = true;
      look.red = true;
    } else if (!in_a) {
      label += "\nadded";
      fill = "#c9ecc9";
    } else if (auto r = reshaped.find(n.key); r != reshaped.end()) {
      label = n.label + "\n" + r->second.substr(r->second.find(": ") + 2);
      fill = "#fbd9a5";
    } else if (auto c = changed.find(n.key); c != changed.end()) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "\nΔ grad ‖·‖ %.0f%% (%s → %s)", 100.0 * c->second->relative,
                    num(c->second->norm_a).c_str(), num(c->second->norm_b).c_str());
      label += buf;
      fill = "#fff3a6";
    }
    look.fill = fill;
    const bool leaf = n.key.rfind("param:", 0) == 0 || n.label == "input";
    nodes.push_back({n.key, n.module,
                     node_attrs(leaf ? "ellipse" : "box", leaf ? "filled" : "rounded,filled", fill,
                                label, &look)});
  };
  for (const auto& n : b.nodes) add(n, ka.count(n.key) > 0, true);
  for (const auto& n : a.nodes)
    if (!kb.count(n.key)) add(n, true, false);

  std::ostringstream os;
  std::string title = "diff: " + (a.title.empty() ? std::string("step a") : a.title) + "  →  " +
                      (b.title.empty() ? std::string("step b") : b.title);
  std::string summary = d.to_string(6);
  os << "digraph xgrad_diff {\n  graph [label=\"" << escape(title + "\n" + summary)
     << "\", labelloc=t, labeljust=l, fontname=Helvetica];\n"
     << "  node [fontname=Helvetica, fontsize=10];\n  edge [fontname=Helvetica, fontsize=9];\n";
  std::map<std::string, std::vector<std::size_t>> clusters;
  for (std::size_t k = 0; k < nodes.size(); ++k) clusters[nodes[k].module].push_back(k);
  for (const auto& [module, members] : clusters) {
    if (!module.empty())
      os << "  subgraph \"cluster_" << escape(module) << "\" {\n    label=\"" << escape(module)
         << "\"; style=\"rounded,dashed\"; color=\"#7f8c8d\"; fontsize=10;\n";
    for (std::size_t k : members) os << "    n" << k << " [" << nodes[k].attrs << "];\n";
    if (!module.empty()) os << "  }\n";
  }
  // Edges of both steps, once each; an edge only in a is dashed red, only in b green.
  std::map<std::pair<std::string, std::string>, int> edges;  // 1: a, 2: b, 3: both
  for (int side = 0; side < 2; ++side) {
    const GraphRecord& r = side == 0 ? a : b;
    for (const auto& n : r.nodes)
      for (std::size_t p : n.producers)
        edges[{id.at(r.nodes[p].key), id.at(n.key)}] |= side == 0 ? 1 : 2;
  }
  for (const auto& [e, sides] : edges) {
    os << "  " << e.first << " -> " << e.second;
    if (sides == 1) os << " [color=\"#c5221f\", style=dashed]";
    if (sides == 2) os << " [color=\"#2e7d32\"]";
    os << ";\n";
  }
  os << "}\n";
  return os.str();
}

}  // namespace xgrad::viz
