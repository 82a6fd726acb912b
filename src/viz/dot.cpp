#include "xgrad/viz/dot.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "xgrad/autograd/node.hpp"
#include "xgrad/io/atomic_file.hpp"

namespace xgrad::viz {

namespace {

using autograd::Node;

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string to_dot(const std::vector<Tensor>& outputs, const DotOptions& options) {
  // Collect every node reachable from the outputs (explicit stack, no recursion).
  std::vector<const Node*> nodes;
  std::set<const Node*> seen;
  std::vector<const Node*> stack;
  for (const auto& t : outputs) {
    check(t.defined(), "to_dot: an output tensor is undefined");
    if (t.grad_fn() && seen.insert(t.grad_fn().get()).second) stack.push_back(t.grad_fn().get());
  }
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    nodes.push_back(n);
    for (const auto& e : n->next_edges())
      if (e.valid() && seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const Node* a, const Node* b) { return a->sequence_nr() < b->sequence_nr(); });
  // Ids are positions in recording order within this graph, not raw sequence numbers: those
  // keep growing across the process, so the same program dumped twice would differ.
  std::map<const Node*, std::size_t> index;
  for (const Node* n : nodes) index.emplace(n, index.size());
  auto id_of = [&index](const Node* n) {
    return (n->leaf() ? "leaf" : "op") + std::to_string(index.at(n));
  };

  std::ostringstream os;
  os << "digraph xgrad {\n";
  os << "  graph [label=\"" << escape(options.title) << "\", labelloc=t, fontname=Helvetica];\n";
  os << "  node [fontname=Helvetica, fontsize=10];\n  edge [fontname=Helvetica, fontsize=9];\n";
  for (const Node* n : nodes) {
    if (const TensorImpl* leaf = n->leaf()) {
      std::string name = leaf->name.empty() ? "leaf" : leaf->name;
      os << "  " << id_of(n) << " [shape=ellipse, style=filled, fillcolor=\"#cfe8cf\", label=\""
         << escape(name + "\n" + format_shape(leaf->shape)) << "\"];\n";
    } else {
      const auto& meta = n->outputs();
      std::string shape =
          meta.empty() ? ""
                       : format_shape(meta[0].shape) + " " + std::string(dtype_name(meta[0].dtype));
      os << "  " << id_of(n) << " [shape=box, style=\"rounded,filled\", fillcolor=\"#dbe7f5\", "
         << "label=\"" << escape(std::string(n->name()) + "\n" + shape) << "\"];\n";
    }
  }
  for (const Node* n : nodes) {
    for (const auto& e : n->next_edges()) {
      if (!e.valid()) continue;
      const auto& meta = e.fn->outputs();
      std::string label = e.input_nr < meta.size() ? format_shape(meta[e.input_nr].shape) : "";
      os << "  " << id_of(e.fn.get()) << " -> " << id_of(n) << " [label=\"" << escape(label)
         << "\"];\n";
    }
  }
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& t = outputs[i];
    os << "  out" << i << " [shape=doubleoctagon, style=filled, fillcolor=\"#f5d0a9\", label=\""
       << escape((t.name().empty() ? "output" : t.name()) + "\n" + format_shape(t.shape()))
       << "\"];\n";
    if (t.grad_fn()) os << "  " << id_of(t.grad_fn().get()) << " -> out" << i << ";\n";
  }
  os << "}\n";
  return os.str();
}

void write_dot(const std::string& path, const std::vector<Tensor>& outputs,
               const DotOptions& options) {
  io::write_file_atomically(path, to_dot(outputs, options));
}

}  // namespace xgrad::viz
