// The saved tensors of a recorded graph (memory.hpp): one pass over the graph's nodes in
// recording order, each storage counted once.
#include "xgrad/viz/memory.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "xgrad/autograd/anomaly.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/nn/module_scope.hpp"
#include "xgrad/viz/graph.hpp"

namespace xgrad::viz {

std::string format_bytes(std::int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[48];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.3g %s", v, units[u]);
  }
  return buf;
}

namespace {

const char* kind_name(SavedKind k) {
  switch (k) {
    case SavedKind::input:
      return "input";
    case SavedKind::output:
      return "output";
    case SavedKind::parameter:
      return "parameter";
    case SavedKind::tangent:
      return "tangent";
  }
  return "?";
}

std::vector<MemoryGroup> sorted_groups(std::map<std::string, MemoryGroup>& m) {
  std::vector<MemoryGroup> out;
  for (auto& [k, g] : m) out.push_back(g);
  std::stable_sort(out.begin(), out.end(),
                   [](const MemoryGroup& a, const MemoryGroup& b) { return a.bytes > b.bytes; });
  return out;
}

std::string source_of(const autograd::Node& n) {
  const autograd::NodeDebugInfo* d = n.debug_info();
  if (!d || d->call_stack.empty()) return "";
  const auto loc = autograd::call_site(n);
  if (!loc) return "";
  std::string s = loc->file + ":" + std::to_string(loc->line);
  if (!loc->function.empty()) s += " (" + loc->function + ")";
  return s;
}

}  // namespace

MemoryReport memory_report(const std::vector<Tensor>& outputs) {
  const Graph g = collect_graph(outputs);
  MemoryReport r;
  r.nodes = g.nodes.size();
  r.node_bytes.assign(g.nodes.size(), 0);
  r.node_activation_bytes.assign(g.nodes.size(), 0);

  // The storages of the graph's parameters (leaves that require grad): alive without it.
  std::unordered_set<const Storage*> leaf_storage;
  for (const autograd::Node* n : g.nodes)
    if (const TensorImpl* leaf = n->leaf())
      if (leaf->storage) leaf_storage.insert(leaf->storage.get());

  std::unordered_map<const Storage*, std::size_t> holder;  // storage -> counting entry
  std::map<std::string, MemoryGroup> modules, ops;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const autograd::Node& n = *g.nodes[i];
    const auto& store = n.saved_variables();
    if (store.empty()) continue;
    bool released = false;
    const std::string module(nn::scope_path(n));
    const std::string op(n.name());
    std::string source;  // looked up once per node, only when it has a call stack
    bool source_done = false;
    for (std::uint32_t slot = 0; slot < store.size(); ++slot) {
      const autograd::SavedVariable& sv = store[slot];
      released = released || sv.released();
      for (int part = 0; part < 2; ++part) {
        const Tensor& t = part == 0 ? sv.held_data() : sv.held_tangent();
        if (!t.defined()) continue;
        if (!source_done) {
          source = source_of(n);
          source_done = true;
        }
        SavedTensor e;
        e.node = i;
        e.op = op;
        e.module = module;
        e.slot = slot;
        e.shape = t.shape();
        e.dtype = t.dtype();
        e.bytes = t.numel() * static_cast<std::int64_t>(element_size(t.dtype()));
        const Storage* st = t.storage().get();
        e.storage_bytes = st ? static_cast<std::int64_t>(st->nbytes()) : 0;
        e.kind = part == 1                ? SavedKind::tangent
                 : leaf_storage.count(st) ? SavedKind::parameter
                 : sv.is_output()         ? SavedKind::output
                                          : SavedKind::input;
        e.source = source;
        const std::size_t index = r.tensors.size();
        auto [it, fresh] = holder.emplace(st, index);
        e.counted = fresh;
        if (!fresh) e.shared_with = static_cast<std::int64_t>(it->second);
        const std::int64_t counted = fresh ? e.storage_bytes : 0;
        const std::int64_t act = e.kind == SavedKind::parameter ? 0 : counted;
        r.total_bytes += counted;
        r.parameter_bytes += counted - act;
        r.node_bytes[i] += counted;
        r.node_activation_bytes[i] += act;
        for (auto* m : {&modules, &ops}) {
          MemoryGroup& grp = (*m)[m == &modules ? module : op];
          grp.name = m == &modules ? module : op;
          grp.bytes += counted;
          grp.activation_bytes += act;
          ++grp.tensors;
        }
        r.tensors.push_back(std::move(e));
      }
    }
    r.released_nodes += released;
  }
  r.by_module = sorted_groups(modules);
  r.by_op = sorted_groups(ops);
  return r;
}

MemoryReport memory_report(const Tensor& loss) {
  return memory_report(std::vector<Tensor>{loss});
}

std::string MemoryReport::to_string(std::size_t max_rows) const {
  std::ostringstream os;
  os << "saved for backward: " << tensors.size() << " tensor" << (tensors.size() == 1 ? "" : "s")
     << " by the " << nodes << " node" << (nodes == 1 ? "" : "s") << " of the graph, "
     << format_bytes(total_bytes) << " held (each storage counted once)\n"
     << "  activations " << format_bytes(activation_bytes())
     << " (freed with the graph), parameters " << format_bytes(parameter_bytes)
     << " (kept by the model anyway)\n";
  if (released_nodes > 0)
    os << "  " << released_nodes
       << " node(s) already released their saved tensors (backward ran without retain_graph)\n";
  auto groups = [&](const char* title, const std::vector<MemoryGroup>& gs) {
    os << title << "\n";
    std::size_t w = 12;
    for (const auto& g : gs) w = std::max(w, g.name.size());
    for (const auto& g : gs) {
      char line[256];
      std::snprintf(line, sizeof line, "  %-*s %10s  activations %10s  %zu tensor%s\n",
                    static_cast<int>(w), g.name.empty() ? "(no module)" : g.name.c_str(),
                    format_bytes(g.bytes).c_str(), format_bytes(g.activation_bytes).c_str(),
                    g.tensors, g.tensors == 1 ? "" : "s");
      os << line;
    }
  };
  groups("by module:", by_module);
  groups("by op:", by_op);
  os << "tensors (#, node, module, op[slot], kind, shape, dtype, bytes held):\n";
  const std::size_t n = max_rows == 0 ? tensors.size() : std::min(max_rows, tensors.size());
  for (std::size_t k = 0; k < n; ++k) {
    const SavedTensor& e = tensors[k];
    os << "  #" << k << "  op" << e.node << "  " << (e.module.empty() ? "-" : e.module) << "  "
       << e.op << "[" << e.slot << "]  " << kind_name(e.kind) << "  " << format_shape(e.shape)
       << " " << dtype_name(e.dtype) << "  ";
    if (e.counted) {
      os << format_bytes(e.storage_bytes);
      if (e.storage_bytes != e.bytes)
        os << " (the whole storage; the view is " << format_bytes(e.bytes) << ")";
    } else {
      os << "shared with #" << e.shared_with << " (not counted again)";
    }
    if (!e.source.empty()) os << "  at " << e.source;
    os << "\n";
  }
  if (n < tensors.size()) os << "  … " << tensors.size() - n << " more\n";
  return os.str();
}

}  // namespace xgrad::viz
