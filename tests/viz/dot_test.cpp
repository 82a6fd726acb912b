// viz::to_dot / write_dot: one DOT node per op and per parameter of an MLP training step, the
// labels, determinism across two runs of the same program, Graphviz accepting the text, and
// atomic writes.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/viz/dot.hpp"

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::list_dir;
using xgrad::testing::slurp;
using xgrad::testing::TempDir;

namespace {

struct Step {
  Tensor loss;
  std::string dot;
};

// One MLP step of the main job's model: loss = cross_entropy(MLP(x), labels).
Step mlp_step() {
  manual_seed(0);
  nn::MLP mlp({784, 256, 128, 10});
  Tensor x = randn({4, 784});
  Tensor labels = tensor({1.0, 0.0, 9.0, 3.0}, int64);
  Tensor loss = cross_entropy(mlp(x), labels);
  return {loss, viz::to_dot({loss})};
}

// Counts the graph's nodes by walking grad_fn / next_edges: op nodes and leaf accumulators.
struct GraphCount {
  std::size_t ops = 0, leaves = 0, edges = 0;
  std::map<std::string, int> op_names;
  std::vector<std::string> leaf_names;
};

GraphCount walk(const Tensor& out) {
  GraphCount c;
  std::set<const autograd::Node*> seen;
  std::vector<const autograd::Node*> stack{out.grad_fn().get()};
  seen.insert(stack.back());
  while (!stack.empty()) {
    const autograd::Node* n = stack.back();
    stack.pop_back();
    if (const TensorImpl* leaf = n->leaf()) {
      ++c.leaves;
      c.leaf_names.push_back(leaf->name);
    } else {
      ++c.ops;
      ++c.op_names[std::string(n->name())];
    }
    for (const auto& e : n->next_edges()) {
      if (!e.valid()) continue;
      ++c.edges;
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }
  return c;
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size()))
    ++n;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dot)

BOOST_AUTO_TEST_CASE(one_node_per_op_and_per_parameter) {
  Step s = mlp_step();
  GraphCount g = walk(s.loss);
  // The graph of this step: 3 linear, 2 relu, 1 cross_entropy; 6 parameters.
  BOOST_TEST(g.ops == 6u);
  BOOST_TEST(g.leaves == 6u);
  BOOST_TEST(g.op_names["linear"] == 3);
  BOOST_TEST(g.op_names["relu"] == 2);
  BOOST_TEST(g.op_names["cross_entropy"] == 1);
  // One box per op, one ellipse per parameter, one double octagon per output, plus one of
  // each in the legend.
  BOOST_TEST(count(s.dot, "shape=box") == g.ops + 1);
  BOOST_TEST(count(s.dot, "shape=ellipse") == g.leaves + 1);
  BOOST_TEST(count(s.dot, "shape=doubleoctagon") == 1u + 1u);
  BOOST_TEST(count(s.dot, "legend_") == 4u);
  // One arrow per valid edge, plus the one into the output.
  BOOST_TEST(count(s.dot, " -> ") == g.edges + 1);
  BOOST_TEST(g.edges == 11u);  // linear: 3+2+2 (x needs no grad), relu 1+1, loss 1 (labels none)
}

BOOST_AUTO_TEST_CASE(labels_name_parameters_and_ops) {
  Step s = mlp_step();
  const std::string& d = s.dot;
  BOOST_TEST(d.rfind("digraph xgrad {\n", 0) == 0u);
  BOOST_TEST(d.substr(d.size() - 2) == "}\n");
  BOOST_TEST(d.find("label=\"xgrad graph\"") != std::string::npos);
  // Parameters: name and shape on two lines (DOT's \n escape).
  for (const char* label :
       {"\"fc1.weight\\n[256,784]\"", "\"fc1.bias\\n[256]\"", "\"fc2.weight\\n[128,256]\"",
        "\"fc2.bias\\n[128]\"", "\"fc3.weight\\n[10,128]\"", "\"fc3.bias\\n[10]\""})
    BOOST_TEST(count(d, label) == 1u, "label " << label);
  // Ops: name, output shape and dtype.
  BOOST_TEST(count(d, "\"linear\\n[4,256] float32\"") == 1u);
  BOOST_TEST(count(d, "\"linear\\n[4,128] float32\"") == 1u);
  BOOST_TEST(count(d, "\"linear\\n[4,10] float32\"") == 1u);
  BOOST_TEST(count(d, "\"relu\\n") == 2u);
  BOOST_TEST(count(d, "\"cross_entropy\\n[] float32\"") == 1u);
  BOOST_TEST(count(d, "\"output\\n[]\"") == 1u);
  // Edges carry the shape flowing along them.
  BOOST_TEST(count(d, "[label=\"[256,784]\"]") == 1u);
  BOOST_TEST(count(d, "[label=\"[4,10]\"]") == 1u);

  viz::DotOptions opts;
  opts.title = "step \"1\"";
  const std::string titled = viz::to_dot({s.loss}, opts);
  BOOST_TEST(titled.find("label=\"step \\\"1\\\"\"") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(same_program_same_text) {
  // Node ids must not depend on how many nodes the process recorded before.
  const std::string first = mlp_step().dot;
  const std::string second = mlp_step().dot;
  BOOST_TEST(first == second);
  // Ids are numbered from 0 within the graph, in recording order: the first linear, then
  // the accumulators of its parameters (created as it records), ..., the loss last (12 nodes).
  BOOST_TEST(first.find("  op0 [shape=box, style=\"rounded,filled\", fillcolor=\"#dbe7f5\", "
                        "label=\"linear\\n[4,256] float32\"];\n") != std::string::npos);
  BOOST_TEST(first.find("  leaf1 [shape=ellipse, style=filled, fillcolor=\"#cfe8cf\", "
                        "label=\"fc1.weight\\n[256,784]\"];\n") != std::string::npos);
  BOOST_TEST(first.find("  op11 [shape=box, style=\"rounded,filled\", fillcolor=\"#dbe7f5\", "
                        "label=\"cross_entropy\\n[] float32\"];\n") != std::string::npos);
  BOOST_TEST(first.find("  leaf1 -> op0 [label=\"[256,784]\"];\n") != std::string::npos);
  BOOST_TEST(first.find("  op8 -> op11 [label=\"[4,10]\"];\n") != std::string::npos);
  BOOST_TEST(first.find("  op11 -> out0;\n") != std::string::npos);
  BOOST_TEST(first.find("12 [") == std::string::npos);
  {
    // Recording other graphs in between does not change the text either.
    Tensor w = randn({3, 3}).requires_grad_();
    for (int i = 0; i < 5; ++i) w = w * 2.0;
  }
  BOOST_TEST(mlp_step().dot == first);
}

BOOST_AUTO_TEST_CASE(graphviz_accepts_the_text) {
  if (std::system("command -v dot >/dev/null 2>&1") != 0) {
    BOOST_TEST_MESSAGE("Graphviz `dot` is not on PATH: skipping the render check");
    BOOST_TEST(true);
    return;
  }
  TempDir dir;
  const std::string path = dir.path + "/step.dot";
  viz::write_dot(path, {mlp_step().loss});
  const std::string svg = dir.path + "/step.svg";
  const int rc = std::system(("dot -Tsvg '" + path + "' -o '" + svg + "' 2>&1").c_str());
  BOOST_TEST(rc == 0);
  const std::string out = slurp(svg);
  BOOST_TEST(out.find("<svg") != std::string::npos);
  BOOST_TEST(out.find("fc1.weight") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(write_dot_is_atomic) {
  TempDir dir;
  const std::string path = dir.path + "/graph.dot";
  Step s = mlp_step();
  viz::write_dot(path, {s.loss});
  BOOST_TEST(slurp(path) == s.dot);
  BOOST_TEST((list_dir(dir.path) == std::vector<std::string>{"graph.dot"}));

  // Overwriting replaces the content, still without leftovers.
  viz::DotOptions opts;
  opts.title = "second";
  viz::write_dot(path, {s.loss}, opts);
  const std::string second = slurp(path);
  BOOST_TEST(second == viz::to_dot({s.loss}, opts));
  BOOST_TEST(second != s.dot);
  BOOST_TEST((list_dir(dir.path) == std::vector<std::string>{"graph.dot"}));

  // A missing folder throws and creates nothing.
  expect_error([&] { viz::write_dot(dir.path + "/missing/graph.dot", {s.loss}); },
               {"write_file_atomically", "missing/graph.dot"});
  BOOST_TEST((list_dir(dir.path) == std::vector<std::string>{"graph.dot"}));
}

BOOST_AUTO_TEST_CASE(several_outputs_and_errors) {
  Tensor a = tensor({1.0, 2.0}, float64).requires_grad_().set_name("a");
  Tensor b = (a * a).set_name("sq");
  Tensor c = a.sum();
  const std::string d = viz::to_dot({b, c});
  BOOST_TEST(count(d, "shape=doubleoctagon") == 2u + 1u);  // + the legend's
  BOOST_TEST(count(d, "\"sq\\n[2]\"") == 1u);
  BOOST_TEST(count(d, "\"output\\n[]\"") == 1u);
  // The shared leaf appears once; mul uses it twice (two edges).
  BOOST_TEST(count(d, "shape=ellipse") == 1u + 1u);
  BOOST_TEST(count(d, "\"a\\n[2]\"") == 1u);
  BOOST_TEST(count(d, "shape=box") == 2u + 1u);
  BOOST_TEST(count(d, " -> ") == 2u + 1u + 2u);
  expect_error([] { viz::to_dot({Tensor()}); }, {"to_dot", "undefined"});
}

BOOST_AUTO_TEST_SUITE_END()
