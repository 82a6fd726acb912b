#include "xgrad/viz/dot.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <tuple>
#include <unordered_map>

#include "viz/dot_style.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/io/atomic_file.hpp"
#include "xgrad/nn/module_scope.hpp"
#include "xgrad/viz/graph.hpp"
#include "xgrad/viz/memory.hpp"
#include "xgrad/viz/render.hpp"

namespace xgrad::viz {

namespace {

using autograd::Node;

struct Item {
  std::string id, attrs, cluster;
};

using namespace dot_style;  // NOLINT(google-build-using-namespace): the writer's own vocabulary

// A node with more outputs than this shows the range of their gradients on one line.
constexpr std::size_t kSlotsListed = 4;

struct Writer {
  const Graph& g;
  const std::vector<Tensor>& outputs;
  const DotOptions& opt;
  bool with_grads = false;
  bool backward = false;
  std::vector<std::size_t> order;  // backward: engine order per node
  std::map<std::string, std::string> scope_types;
  const char* edge_label_attr = "label";  // "xlabel" for big graphs (see emit())
  bool xlabels = false;                   // edge labels as xlabels (over the size budget)
  const MemoryReport* memory = nullptr;   // DotOptions::memory
  std::int64_t max_node_bytes = 0;        // the most activation bytes one node saved

  // A node's fill by its saved bytes: white to dark red in proportion to the most any node
  // saved.
  std::string memory_fill(std::int64_t bytes) const {
    if (bytes <= 0 || max_node_bytes <= 0) return "#ffffff";
    const double f = static_cast<double>(bytes) / static_cast<double>(max_node_bytes);
    const double from[3] = {255, 247, 236}, to[3] = {215, 48, 31};
    char buf[16];
    int c[3];
    for (int k = 0; k < 3; ++k) c[k] = static_cast<int>(from[k] + (to[k] - from[k]) * f + 0.5);
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c[0], c[1], c[2]);
    return buf;
  }
  std::string memory_lines(std::int64_t act, std::int64_t all) const {
    std::string out;
    if (act > 0) out += "\nsaves " + format_bytes(act);
    if (all > act) out += (act > 0 ? " + " : "\nsaves ") + format_bytes(all - act) + " of weights";
    return out;
  }

  std::string id(std::size_t i) const {
    if (g.group[i] >= 0) return "fold" + std::to_string(g.group[i]);
    return (g.nodes[i]->leaf() ? "leaf" : "op") + std::to_string(i);
  }

  const GradientStats* stats(std::size_t i, std::uint32_t slot = 0) const {
    return with_grads ? opt.gradients->find(g.nodes[i], slot) : nullptr;
  }

  // Worst state over the output slots of node i.
  State node_state(std::size_t i) const {
    State worst = State::none;
    auto rank = [](State s) {
      return s == State::nonfinite ? 3 : s == State::vanishing ? 2 : s == State::ok ? 1 : 0;
    };
    const std::size_t slots = std::max<std::size_t>(1, g.nodes[i]->outputs().size());
    for (std::uint32_t s = 0; s < slots; ++s) {
      State st = state_of(stats(i, s), opt.vanishing_threshold);
      if (rank(st) > rank(worst)) worst = st;
    }
    return worst;
  }

  // The op's own annotation (gradients.hpp: the dead units after a ReLU), from the gradient
  // it passes back to its first input's producer when that producer feeds nothing else.
  std::string annotation_lines(std::size_t i, const std::vector<int>& consumers) const {
    const Node* n = g.nodes[i];
    if (n->leaf() || n->next_edges().empty() || !n->next_edges()[0].valid()) return "";
    const GradientAnnotation annotate = gradient_annotation(std::string(n->name()));
    if (!annotate) return "";
    const auto& e = n->next_edges()[0];
    const std::size_t q = g.index.at(e.fn.get());
    if (consumers[q] != 1) return "";
    const GradientStats* s = stats(q, e.input_nr);
    return s ? annotate(*s) : "";
  }

  Item node_item(std::size_t i, const std::vector<int>& consumers) const {
    const Node* n = g.nodes[i];
    Item it{id(i), "", std::string(nn::scope_path(*n))};
    std::string prefix = backward ? std::to_string(order[i]) + ". " : "";
    GradLook gl;
    const GradLook* glp = nullptr;
    std::string grad_text;
    if (with_grads) {
      const State st = node_state(i);
      gl = look(st);
      glp = &gl;
      const std::size_t slots = std::max<std::size_t>(1, n->outputs().size());
      if (slots <= kSlotsListed) {
        for (std::uint32_t s = 0; s < slots; ++s) {
          const GradientStats* gs = stats(i, s);
          if (slots > 1) grad_text += "\noutput " + std::to_string(s) + ":";
          grad_text += gs ? stats_lines(*gs) : "\nno gradient";
        }
      } else {
        // Many outputs (unbind over 28 time steps): one line for the range of their norms.
        double lo = std::numeric_limits<double>::infinity(), hi = 0;
        std::size_t got = 0, bad = 0;
        for (std::uint32_t s = 0; s < slots; ++s) {
          const GradientStats* gs = stats(i, s);
          if (!gs) continue;
          ++got;
          if (!gs->finite()) {
            ++bad;
            continue;
          }
          lo = std::min(lo, gs->norm);
          hi = std::max(hi, gs->norm);
        }
        grad_text +=
            "\n" + std::to_string(slots) + " outputs, " + std::to_string(got) + " with a gradient";
        if (got > bad) grad_text += ": grad ‖·‖ " + num(lo) + " … " + num(hi);
        if (bad > 0) grad_text += "\n" + std::to_string(bad) + " with NaN/Inf";
      }
      grad_text += annotation_lines(i, consumers);
    }
    if (const TensorImpl* leaf = n->leaf()) {
      const NodeKind k = kind_of(n);
      std::string label = prefix + (backward ? "accumulate_grad\n" : "");
      if (k == NodeKind::param) {
        label += leaf->name + "\n" + format_shape(leaf->shape);
      } else {
        label += "input\n" + format_shape(leaf->shape) + " " + std::string(dtype_name(leaf->dtype));
      }
      it.attrs = k == NodeKind::param
                     ? node_attrs("ellipse", "filled", kParamColor, label + grad_text, glp)
                     : node_attrs("parallelogram", "filled", kInputColor, label + grad_text, glp);
    } else {
      const auto& meta = n->outputs();
      std::string label = prefix + std::string(n->name()) + (backward ? " backward" : "");
      if (!meta.empty()) label += "\n" + shape_dtype(meta[0]);
      std::string fill = kOpColor;
      if (memory) {
        label += memory_lines(memory->node_activation_bytes[i], memory->node_bytes[i]);
        fill = memory_fill(memory->node_activation_bytes[i]);
        if (glp && gl.fill && !gl.red) gl.fill = nullptr;  // the memory colour wins, NaN aside
      }
      it.attrs = node_attrs("box", "rounded,filled", fill.c_str(), label + grad_text, glp);
    }
    return it;
  }

  Item fold_item(std::size_t f) const {
    const Fold& fg = g.folds[f];
    std::string label = "×" + std::to_string(fg.folded_repeats()) + " repeats of a block of " +
                        std::to_string(fg.period) + " node" + (fg.period == 1 ? "" : "s") +
                        " (folded)";
    constexpr std::size_t kShown = 8;
    for (std::size_t j = 0; j < fg.period && j < kShown; ++j) {
      const Node* n = g.nodes[fg.first_folded() + j];
      if (const TensorImpl* leaf = n->leaf()) {
        label += "\n" + std::string(leaf->name.empty() ? "input" : "parameter") + " " +
                 format_shape(leaf->shape);
      } else {
        label += "\n" + std::string(n->name());
        if (!n->outputs().empty()) label += " " + shape_dtype(n->outputs()[0]);
      }
    }
    if (fg.period > kShown) label += "\n… " + std::to_string(fg.period - kShown) + " more";
    // Scopes spanned, and the innermost module containing them all (the summary's cluster).
    auto components = [](std::string_view p) {
      std::vector<std::string> out;
      while (!p.empty()) {
        const auto dot = p.find('.');
        out.emplace_back(p.substr(0, dot));
        p = dot == std::string_view::npos ? std::string_view() : p.substr(dot + 1);
      }
      return out;
    };
    std::vector<std::string> common = components(nn::scope_path(*g.nodes[fg.first_folded()]));
    for (std::size_t i = fg.first_folded(); i < fg.end_folded() && !common.empty(); ++i) {
      const auto c = components(nn::scope_path(*g.nodes[i]));
      std::size_t k = 0;
      while (k < common.size() && k < c.size() && common[k] == c[k]) ++k;
      common.resize(k);
    }
    std::string cluster;
    for (const auto& c : common) cluster += (cluster.empty() ? "" : ".") + c;
    // The modules one repeat runs in ("hidden, input"), and how they change along the run
    // (a stack of identical layers: "layers.1 … layers.98").
    auto scopes_of = [&](std::size_t from) {
      std::vector<std::string> out;
      for (std::size_t i = from; i < from + fg.period; ++i) {
        std::string sc(nn::scope_path(*g.nodes[i]));
        if (!sc.empty() && std::find(out.begin(), out.end(), sc) == out.end()) out.push_back(sc);
      }
      std::string joined;
      for (std::size_t k = 0; k < out.size() && k < 3; ++k) joined += (k ? ", " : "") + out[k];
      if (out.size() > 3) joined += ", …";
      return joined;
    };
    const std::string first_scopes = scopes_of(fg.first_folded());
    const std::string last_scopes = scopes_of(fg.end_folded() - fg.period);
    if (first_scopes == last_scopes && !first_scopes.empty()) {
      label += "\nin " + first_scopes;
    } else if (first_scopes != last_scopes) {
      label += "\nin " + first_scopes + " … " + last_scopes;
    }
    GradLook gl;
    const GradLook* glp = nullptr;
    if (with_grads) {
      double lo = std::numeric_limits<double>::infinity(), hi = 0;
      bool nonfinite = false, any = false;
      for (std::size_t i = fg.first_folded(); i < fg.end_folded(); ++i) {
        for (std::uint32_t s = 0; s < std::max<std::size_t>(1, g.nodes[i]->outputs().size()); ++s) {
          const GradientStats* gs = stats(i, s);
          if (!gs) continue;
          any = true;
          nonfinite = nonfinite || !gs->finite();
          if (gs->finite()) {
            lo = std::min(lo, gs->norm);
            hi = std::max(hi, gs->norm);
          }
        }
      }
      if (any) label += "\ngrad ‖·‖ " + num(lo) + " … " + num(hi);
      gl = look(!any                           ? State::none
                : nonfinite                    ? State::nonfinite
                : lo < opt.vanishing_threshold ? State::vanishing
                                               : State::ok);
      glp = &gl;
    }
    std::string fill = kFoldColor;
    if (memory) {
      std::int64_t act = 0, all = 0;
      for (std::size_t i = fg.first_folded(); i < fg.end_folded(); ++i) {
        act += memory->node_activation_bytes[i];
        all += memory->node_bytes[i];
      }
      label += memory_lines(act, all);
      fill = memory_fill(act / static_cast<std::int64_t>(fg.folded_repeats()));
      if (glp && gl.fill && !gl.red) gl.fill = nullptr;
    }
    return {"fold" + std::to_string(f), node_attrs("box3d", "filled", fill.c_str(), label, glp),
            cluster};
  }

  std::string graph_label() const {
    std::string label = opt.title;
    if (backward)
      label += "\nbackward graph: the nodes the engine runs, numbered in the order it runs them";
    if (with_grads) {
      label +=
          "\ngradients of one backward pass: grad ‖·‖ is the L2 norm of d(output)/d(tensor), "
          "min and max its extreme entries; red: NaN/Inf, amber: grad ‖·‖ < " +
          num(opt.vanishing_threshold);
      // Where the first non-finite gradient appeared (in backward order).
      std::optional<std::pair<std::size_t, std::uint32_t>> first;
      std::uint64_t first_order = std::numeric_limits<std::uint64_t>::max();
      for (std::size_t i = 0; i < g.nodes.size(); ++i)
        for (std::uint32_t s = 0; s < std::max<std::size_t>(1, g.nodes[i]->outputs().size()); ++s) {
          const GradientStats* gs = stats(i, s);
          if (gs && !gs->finite() && gs->order < first_order) {
            first_order = gs->order;
            first = {i, s};
          }
        }
      if (first) {
        const auto [q, slot] = *first;
        std::string by;
        for (std::size_t c = 0; c < g.nodes.size(); ++c)
          for (const auto& e : g.nodes[c]->next_edges())
            if (e.valid() && e.fn.get() == g.nodes[q] && e.input_nr == slot)
              by += (by.empty() ? "'" : ", '") + std::string(g.nodes[c]->name()) + "' (" + id(c) +
                    ")";
        label += "\nfirst NaN/Inf gradient: at " + id(q) + " (" +
                 std::string(g.nodes[q]->leaf() ? "a leaf" : g.nodes[q]->name()) + "), " +
                 (by.empty() ? std::string("from the output's seed")
                             : "produced by the backward of " + by);
      }
    }
    if (memory) {
      label += "\nsaved for backward: " + format_bytes(memory->total_bytes) + " (activations " +
               format_bytes(memory->activation_bytes()) + ", weights " +
               format_bytes(memory->parameter_bytes) +
               "; each storage counted once); fill: white → dark red in proportion to the "
               "activation bytes an op saved";
    }
    if (!g.folds.empty()) {
      std::size_t folded = 0;
      for (const auto& f : g.folds) folded += f.period * f.folded_repeats();
      label += "\nfolded for readability (" + std::to_string(g.nodes.size()) + " nodes, " +
               std::to_string(folded) + " of them folded):";
      for (std::size_t f = 0; f < g.folds.size() && f < 4; ++f) {
        const Fold& fg = g.folds[f];
        label += "\n  fold" + std::to_string(f) + ": ×" + std::to_string(fg.folded_repeats()) +
                 " repeats of a " + std::to_string(fg.period) + "-node block (" +
                 std::to_string(fg.count) + " in a row; the first and last are shown)";
      }
      if (g.folds.size() > 4)
        label += "\n  … and " + std::to_string(g.folds.size() - 4) + " more folds";
    }
    return label;
  }

  void legend(std::ostream& os) const {
    os << "  subgraph cluster_legend {\n"
       << "    label=\"legend\"; style=\"rounded,dashed\"; color=\"#999999\"; fontsize=10;\n";
    os << "    legend_input [" << node_attrs("parallelogram", "filled", kInputColor, "input")
       << "];\n";
    os << "    legend_param [" << node_attrs("ellipse", "filled", kParamColor, "parameter")
       << "];\n";
    os << "    legend_op [" << node_attrs("box", "rounded,filled", kOpColor, "op") << "];\n";
    os << "    legend_output ["
       << node_attrs("doubleoctagon", "filled", kOutputColor, "output (loss)") << "];\n";
    if (!g.folds.empty())
      os << "    legend_fold [" << node_attrs("box3d", "filled", kFoldColor, "folded repeats ×N")
         << "];\n";
    if (memory) {
      os << "    legend_saves_most ["
         << node_attrs("box", "rounded,filled", memory_fill(max_node_bytes).c_str(),
                       "saves the most\n" + format_bytes(max_node_bytes))
         << "];\n";
      os << "    legend_saves_half ["
         << node_attrs("box", "rounded,filled", memory_fill(max_node_bytes / 2).c_str(),
                       "saves half of that")
         << "];\n";
    }
    if (with_grads) {
      GradLook red = look(State::nonfinite), amber = look(State::vanishing),
               none = look(State::none);
      os << "    legend_nan ["
         << node_attrs("box", "rounded,filled", kOpColor, "NaN/Inf gradient", &red) << "];\n";
      os << "    legend_vanishing ["
         << node_attrs("box", "rounded,filled", kOpColor,
                       "vanishing gradient\ngrad ‖·‖ < " + num(opt.vanishing_threshold), &amber)
         << "];\n";
      os << "    legend_nograd ["
         << node_attrs("box", "rounded,filled", kOpColor, "no gradient", &none) << "];\n";
    }
    os << "  }\n";
  }

  struct DrawnEdge {
    std::string from, to, label;
    std::size_t count = 1;
  };
  struct Drawing {
    std::vector<int> consumers;
    std::vector<Item> items;
    std::vector<bool> data_shown;
    std::vector<DrawnEdge> edges;
  };

  // Everything to draw for the current folding.
  Drawing prepare() {
    with_grads = opt.gradients != nullptr &&
                 (opt.kind == GraphKind::gradients || opt.kind == GraphKind::backward);
    backward = opt.kind == GraphKind::backward;
    if (backward && order.empty()) order = backward_order(g, outputs);
    Drawing d;

    // Consumers per node (for dead-unit attribution).
    d.consumers.assign(g.nodes.size(), 0);
    for (const auto& prods : g.producers)
      for (std::size_t q : prods) ++d.consumers[q];

    // Items in recording order: folds at the position of their first folded node.
    for (std::size_t i = 0; i < g.nodes.size(); ++i) {
      if (g.group[i] < 0) {
        d.items.push_back(node_item(i, d.consumers));
      } else if (i == g.folds[static_cast<std::size_t>(g.group[i])].first_folded()) {
        d.items.push_back(fold_item(static_cast<std::size_t>(g.group[i])));
      }
    }
    if (!opt.clusters)
      for (auto& it : d.items) it.cluster.clear();

    d.data_shown.assign(g.data.size(), false);
    if (!backward)
      for (std::size_t k = 0; k < g.data.size(); ++k)
        for (auto& [c, slot] : g.data[k].consumers)
          d.data_shown[k] = d.data_shown[k] || g.group[c] < 0;

    // Edges, in node order then input order. Edges touching a fold are merged (×count).
    std::map<std::tuple<std::string, std::string, std::string>, std::size_t> merged;
    auto add_edge = [&](std::string from, std::string to, std::string label, bool merge) {
      if (merge) {
        auto key = std::make_tuple(from, to, label);
        auto it = merged.find(key);
        if (it != merged.end()) {
          ++d.edges[it->second].count;
          return;
        }
        merged.emplace(key, d.edges.size());
      }
      d.edges.push_back({std::move(from), std::move(to), std::move(label)});
    };
    for (std::size_t c = 0; c < g.nodes.size(); ++c) {
      for (const auto& e : g.nodes[c]->next_edges()) {
        if (!e.valid()) continue;
        const std::size_t q = g.index.at(e.fn.get());
        if (g.group[q] >= 0 && g.group[q] == g.group[c]) continue;  // inside one fold
        const auto& meta = e.fn->outputs();
        std::string label = e.input_nr < meta.size() ? format_shape(meta[e.input_nr].shape) : "";
        const bool merge = g.group[q] >= 0 || g.group[c] >= 0;
        if (backward) {
          add_edge(id(c), id(q), label, merge);
        } else {
          add_edge(id(q), id(c), label, merge);
        }
      }
      if (backward) continue;
      for (std::size_t k = 0; k < g.data.size(); ++k)
        if (d.data_shown[k])
          for (auto& [cc, slot] : g.data[k].consumers)
            if (cc == c)
              add_edge("in" + std::to_string(k), id(c), format_shape(g.data[k].shape),
                       g.group[c] >= 0);
    }
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      const Tensor& t = outputs[i];
      if (!t.grad_fn()) continue;
      const std::string target = id(g.index.at(t.grad_fn().get()));
      if (backward) {
        add_edge("out" + std::to_string(i), target, format_shape(t.shape()), false);
      } else {
        add_edge(target, "out" + std::to_string(i), "", false);
      }
    }
    return d;
  }

  // The drawing's size as dot would lay it out, in points (see DotOptions::max_pixels).
  std::pair<double, double> estimate(const Drawing& d, bool edge_labels) const {
    std::map<std::string, std::pair<double, double>> box;  // id -> (width, height)
    auto measure = [](const std::string& label) {
      double lines = 1, longest = 0, chars = 0;
      for (std::size_t k = 0; k < label.size(); ++k) {
        const unsigned char c = static_cast<unsigned char>(label[k]);
        if (c == '\n') {
          ++lines;
          longest = std::max(longest, chars);
          chars = 0;
        } else if ((c & 0xC0) != 0x80) {
          ++chars;  // one per UTF-8 code point
        }
      }
      longest = std::max(longest, chars);
      return std::make_pair(std::max(54.0, 5.6 * longest + 18), std::max(36.0, 12.0 * lines + 10));
    };
    auto label_of = [](const std::string& attrs) {
      const std::size_t p = attrs.find("label=\"");
      if (p == std::string::npos) return std::string();
      std::string out;
      for (std::size_t k = p + 7; k < attrs.size() && attrs[k] != '"'; ++k) {
        if (attrs[k] == '\\' && k + 1 < attrs.size()) {
          out += attrs[k + 1] == 'n' ? '\n' : attrs[k + 1];
          ++k;
        } else {
          out += attrs[k];
        }
      }
      return out;
    };
    for (const auto& it : d.items) box[it.id] = measure(label_of(it.attrs));
    for (std::size_t k = 0; k < g.data.size(); ++k)
      if (d.data_shown[k]) box["in" + std::to_string(k)] = measure(g.data[k].label);
    for (std::size_t i = 0; i < outputs.size(); ++i)
      box["out" + std::to_string(i)] = measure("output\n" + format_shape(outputs[i].shape()));
    // Ranks by longest path (Kahn's order; an edge inside a cycle is ignored).
    std::map<std::string, std::vector<std::string>> next;
    std::map<std::string, int> indeg, rank;
    for (const auto& [name, b] : box) indeg[name] = 0;
    for (const auto& e : d.edges)
      if (box.count(e.from) && box.count(e.to) && e.from != e.to) {
        next[e.from].push_back(e.to);
        ++indeg[e.to];
      }
    std::vector<std::string> ready;
    for (const auto& [name, n] : indeg)
      if (n == 0) ready.push_back(name);
    while (!ready.empty()) {
      const std::string u = ready.back();
      ready.pop_back();
      for (const auto& v : next[u]) {
        rank[v] = std::max(rank[v], rank[u] + 1);
        if (--indeg[v] == 0) ready.push_back(v);
      }
    }
    std::map<int, std::pair<double, double>> per_rank;  // rank -> (width sum, max height)
    for (const auto& [name, b] : box) {
      auto& r = per_rank[rank[name]];
      r.first += b.first + 18;
      r.second = std::max(r.second, b.second);
    }
    double width = 0, height = 0;
    for (const auto& [r, wh] : per_rank) {
      width = std::max(width, wh.first);
      height += wh.second + (edge_labels ? 36 + 12 + 36 : 36);
    }
    const auto title = measure(graph_label());
    height += title.second;
    width = std::max(width, title.first);
    if (opt.legend) height += 60;
    return {width, height};
  }

  std::string write() { return emit(prepare()); }

  std::string emit(const Drawing& d) {
    const auto& items = d.items;
    const auto& data_shown = d.data_shown;
    // Types of every module on the way up (a Sequential that records nothing itself still
    // labels its cluster).
    for (const Node* n : g.nodes)
      for (const nn::ModuleScope* s = nn::module_scope(*n); s; s = s->parent)
        scope_types.emplace(s->path, s->type);

    // Big graphs: Graphviz 2.43 lays out an edge label as a node of its own in the middle of
    // the edge, doubling the ranks, and its x-positioning (network simplex) is quadratic in
    // the resulting virtual nodes: a 470-node LSTM graph took hours. Above kBigGraph drawn
    // nodes, or when the labels would take the drawing over its size budget, shapes go in
    // xlabels (placed after layout) and positioning effort is bounded (nslimit): the same
    // LSTM renders in 3 s.
    constexpr std::size_t kBigGraph = 150;
    const bool big = visible_count(g, outputs.size()) > kBigGraph || xlabels;
    edge_label_attr = big ? "xlabel" : "label";

    std::ostringstream os;
    os << "digraph xgrad {\n";
    os << "  graph [label=\"" << escape(graph_label())
       << "\", labelloc=t, fontname=Helvetica, compound=true" << (big ? ", nslimit=1" : "");
    if (opt.max_pixels > 0) {
      // Graphviz's size is in inches at 72 points each, rendered at 96 dpi (PNG) — so
      // max_pixels / 96 inches: the picture never exceeds the budget (scaled down if need be).
      char size[64];
      std::snprintf(size, sizeof size, "%.4g", opt.max_pixels / 96.0);
      os << ", size=\"" << size << "," << size << "\"";
    }
    os << "];\n";
    os << "  node [fontname=Helvetica, fontsize=10];\n  edge [fontname=Helvetica, fontsize=9];\n";
    if (opt.legend) legend(os);

    // Inputs without gradient and outputs: top level.
    for (std::size_t k = 0; k < g.data.size(); ++k)
      if (data_shown[k])
        os << "  in" << k << " ["
           << node_attrs("parallelogram", "filled", kInputColor, g.data[k].label) << "];\n";
    write_clusters(os, items);
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      const Tensor& t = outputs[i];
      std::string label = (t.name().empty() ? "output" : t.name()) + "\n" + format_shape(t.shape());
      if (backward) label += "\nseed";
      os << "  out" << i << " [" << node_attrs("doubleoctagon", "filled", kOutputColor, label)
         << "];\n";
    }
    for (const auto& e : d.edges) {
      std::string label = e.label;
      if (e.count > 1) label += " ×" + std::to_string(e.count);
      os << "  " << e.from << " -> " << e.to;
      if (!label.empty() || e.to.rfind("out", 0) != 0)
        os << " [" << edge_label_attr << "=\"" << escape(label) << "\"]";
      os << ";\n";
    }
    os << "}\n";
    return os.str();
  }

  // Items grouped into nested clusters by module path ("encoder" contains "encoder.conv2").
  void write_clusters(std::ostream& os, const std::vector<Item>& items) const {
    // Each cluster's parent; clusters in order of first appearance.
    std::vector<std::string> paths;
    std::map<std::string, std::string> parent;
    for (const auto& it : items) {
      std::string p = it.cluster;
      while (!p.empty() && !parent.count(p)) {
        const auto dot = p.rfind('.');
        const std::string up = dot == std::string::npos ? "" : p.substr(0, dot);
        parent.emplace(p, up);
        paths.push_back(p);
        p = up;
      }
    }
    std::map<std::string, std::vector<std::string>> children;
    // Sort children by first appearance: `paths` holds a child before its parent when both
    // were first seen together, so order by the first item inside each.
    std::map<std::string, std::size_t> first_item;
    for (std::size_t k = 0; k < items.size(); ++k) {
      std::string p = items[k].cluster;
      while (!p.empty()) {
        first_item.emplace(p, k);
        p = parent.at(p);
      }
    }
    std::vector<std::string> sorted = paths;
    std::stable_sort(sorted.begin(), sorted.end(), [&](const std::string& a, const std::string& b) {
      return first_item.at(a) < first_item.at(b);
    });
    for (const auto& p : sorted) children[parent.at(p)].push_back(p);
    std::map<std::string, std::vector<std::size_t>> members;
    for (std::size_t k = 0; k < items.size(); ++k) members[items[k].cluster].push_back(k);

    // Depth-first with an explicit stack (module trees are shallow, but stay iterative).
    struct Frame {
      std::string path;
      std::size_t next_child = 0;
      bool opened = false;
    };
    std::vector<Frame> stack{{"", 0, false}};
    while (!stack.empty()) {
      Frame& f = stack.back();
      const std::string indent(2 * stack.size(), ' ');
      if (!f.opened) {
        f.opened = true;
        if (!f.path.empty()) {
          std::string label = f.path;
          auto t = scope_types.find(f.path);
          if (t != scope_types.end() && !t->second.empty()) label += " (" + t->second + ")";
          os << std::string(2 * (stack.size() - 1), ' ') << "subgraph \"cluster_" << escape(f.path)
             << "\" {\n"
             << indent << "label=\"" << escape(label)
             << "\"; style=\"rounded,dashed\"; color=\"#7f8c8d\"; fontsize=10;\n";
        }
        for (std::size_t k : members[f.path])
          os << indent << items[k].id << " [" << items[k].attrs << "];\n";
      }
      auto& kids = children[f.path];
      if (f.next_child < kids.size()) {
        stack.push_back({kids[f.next_child++], 0, false});
        continue;
      }
      if (!f.path.empty()) os << std::string(2 * (stack.size() - 1), ' ') << "}\n";
      stack.pop_back();
    }
  }
};

}  // namespace

std::string to_dot(const std::vector<Tensor>& outputs, const DotOptions& options) {
  check(options.kind != GraphKind::gradients || options.gradients != nullptr,
        "to_dot: GraphKind::gradients needs the GradientRecorder that was attached before "
        "backward (DotOptions::gradients)");
  Graph g = collect_graph(outputs);
  fold_graph(g, outputs.size(), options.max_nodes);
  Writer w{g, outputs, options, false, false, {}, {}, "label", false, nullptr, 0};
  MemoryReport report;
  if (options.memory) {
    report = memory_report(outputs);
    w.memory = &report;
    for (std::int64_t b : report.node_activation_bytes)
      w.max_node_bytes = std::max(w.max_node_bytes, b);
  }
  if (options.max_pixels > 0) {
    // Fold (one run at a time) and move edge labels out of the ranks until the estimated
    // drawing fits the budget, in pixels at 96 dpi (points × 4/3).
    const std::vector<int> sig = fold_signatures(g);
    for (;;) {
      auto d = w.prepare();
      const bool labels = visible_count(g, outputs.size()) <= 150 && !w.xlabels;
      auto [wd, ht] = w.estimate(d, labels);
      if (std::max(wd, ht) * 4.0 / 3.0 <= options.max_pixels) break;
      if (labels) {
        w.xlabels = true;
        continue;
      }
      if (options.max_nodes == 0 || !fold_once(g, sig)) break;  // 0: never fold
    }
  }
  return w.write();
}

void write_dot(const std::string& path, const std::vector<Tensor>& outputs,
               const DotOptions& options) {
  io::write_file_atomically(path, to_dot(outputs, options));
}

void write_graph(const std::string& path, const std::vector<Tensor>& outputs,
                 const DotOptions& options) {
  const auto dot = path.rfind('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == "svg" || ext == "png" || ext == "pdf") {
    render(to_dot(outputs, options), path, ext);
  } else {
    write_dot(path, outputs, options);
  }
}

record_data_inputs::record_data_inputs()
    : prev_((autograd::detail::record_flags() & autograd::detail::record_data_inputs) != 0) {
  autograd::detail::set_record_flags(autograd::detail::record_flags() |
                                     autograd::detail::record_data_inputs);
}

record_data_inputs::~record_data_inputs() {
  const unsigned f = autograd::detail::record_flags() & ~autograd::detail::record_data_inputs;
  autograd::detail::set_record_flags(prev_ ? (f | autograd::detail::record_data_inputs) : f);
}

}  // namespace xgrad::viz
