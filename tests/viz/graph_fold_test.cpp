// Big graphs stay readable: an RNN unrolled over 2,000 steps (by hand with linear + tanh, and
// with nn::RNNCell when it exists) and a deep stack of identical layers fold their repeats into
// one node, stay under the node limit, keep the first and last repeats, and render; small
// graphs and max_nodes = 0 never fold; folding is deterministic.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "xgrad/nn/activation.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/sequential.hpp"
#include "xgrad/viz/dot.hpp"

#if __has_include("xgrad/nn/rnn.hpp")
#include "xgrad/nn/rnn.hpp"
#define XGRAD_TEST_HAVE_RNN_CELL 1
#endif

using namespace xgrad;

namespace {

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// Node statements of a DOT text (lines "  id [" at any depth), legend excluded.
std::set<std::string> node_ids(const std::string& dot) {
  std::set<std::string> ids;
  std::size_t pos = 0;
  while (pos < dot.size()) {
    const std::size_t end = dot.find('\n', pos);
    const std::string line = dot.substr(pos, end - pos);
    pos = end == std::string::npos ? dot.size() : end + 1;
    const std::size_t first = line.find_first_not_of(' ');
    const std::size_t bracket = line.find(" [");
    if (first == std::string::npos || bracket == std::string::npos ||
        line.find("->") != std::string::npos)
      continue;
    const std::string id = line.substr(first, bracket - first);
    if (id == "graph" || id == "node" || id == "edge" || id.rfind("legend_", 0) == 0) continue;
    ids.insert(id);
  }
  return ids;
}

std::vector<const autograd::Node*> recording_order(const Tensor& out) {
  std::vector<const autograd::Node*> nodes;
  std::set<const autograd::Node*> seen{out.grad_fn().get()};
  std::vector<const autograd::Node*> stack{out.grad_fn().get()};
  while (!stack.empty()) {
    const autograd::Node* n = stack.back();
    stack.pop_back();
    nodes.push_back(n);
    for (const auto& e : n->next_edges())
      if (e.valid() && seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
  }
  std::sort(nodes.begin(), nodes.end(),
            [](auto* a, auto* b) { return a->sequence_nr() < b->sequence_nr(); });
  return nodes;
}

std::string id_of(const std::vector<const autograd::Node*>& nodes, std::size_t i) {
  return (nodes[i]->leaf() ? "leaf" : "op") + std::to_string(i);
}

// Renders with Graphviz; returns the number of nodes it drew outside the legend.
std::size_t rendered_nodes(const std::string& dot) {
  if (std::system("command -v dot >/dev/null 2>&1") != 0) return 0;
  std::string tmpl = "/tmp/xgrad_fold_test.XXXXXX";
  BOOST_REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  const std::string in = tmpl + "/g.dot", out = tmpl + "/g.svg";
  std::ofstream(in) << dot;
  const int rc = std::system(("dot -Tsvg '" + in + "' -o '" + out + "' 2>/dev/null").c_str());
  BOOST_TEST(rc == 0);
  std::ifstream f(out);
  const std::string svg((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ::unlink(in.c_str());
  ::unlink(out.c_str());
  ::rmdir(tmpl.c_str());
  return count(svg, "class=\"node\"") - count(svg, "<title>legend_");
}

// h_t = tanh(x_t·W_xᵀ + b + h_{t-1}·W_hᵀ), by hand; loss = sum(h_T).
Tensor rnn_by_hand(int steps, int hidden = 8) {
  manual_seed(3);
  Tensor wx = (randn({hidden, 4}, float64) * 0.3).requires_grad_().set_name("rnn.w_x");
  Tensor b = zeros({hidden}, float64).requires_grad_().set_name("rnn.b");
  Tensor wh = (randn({hidden, hidden}, float64) * 0.3).requires_grad_().set_name("rnn.w_h");
  Tensor h = zeros({1, hidden}, float64);
  for (int t = 0; t < steps; ++t) {
    Tensor xt = randn({1, 4}, float64);
    h = tanh(linear(xt, wx, b) + linear(h, wh));
  }
  return h.sum();
}

// The checks of a folded unrolled RNN: under the limit, a ×N summary, the first and the last
// step drawn, and Graphviz draws as many nodes as the text has.
void expect_folded_rnn(const Tensor& loss, std::size_t ops_per_step, int steps) {
  const auto nodes = recording_order(loss);
  BOOST_TEST(nodes.size() >= ops_per_step * static_cast<std::size_t>(steps));
  const std::string dot = viz::to_dot({loss});
  const auto ids = node_ids(dot);
  BOOST_TEST(ids.size() <= 500u);
  BOOST_TEST(ids.count("fold0") == 1u);
  BOOST_TEST(dot.find("folded for readability (" + std::to_string(nodes.size()) + " nodes") !=
             std::string::npos);
  // A summary of nearly all the steps: ×N with N close to 2,000.
  const auto x = dot.find("label=\"×");
  BOOST_REQUIRE(x != std::string::npos);
  const int folded = std::stoi(dot.substr(x + std::string("label=\"×").size()));
  BOOST_TEST(folded >= steps - 10);
  BOOST_TEST(folded <= steps - 2);
  // The first step (the first ops recorded) and the last step (the ops before the final sum).
  std::size_t first_ops = 0;
  for (std::size_t i = 0; i < nodes.size() && first_ops < ops_per_step; ++i) {
    if (nodes[i]->leaf()) continue;
    BOOST_TEST(ids.count(id_of(nodes, i)) == 1u, "first step: " << id_of(nodes, i));
    ++first_ops;
  }
  for (std::size_t k = 1; k <= ops_per_step + 1; ++k) {
    const std::size_t i = nodes.size() - k;  // sum, then the last step's ops
    BOOST_TEST(ids.count(id_of(nodes, i)) == 1u, "last step: " << id_of(nodes, i));
  }
  const std::size_t drawn = rendered_nodes(dot);
  if (drawn) BOOST_TEST(drawn == ids.size());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(graph_fold)

BOOST_AUTO_TEST_CASE(rnn_by_hand_over_2000_steps_folds) {
  const Tensor loss = rnn_by_hand(2000);
  expect_folded_rnn(loss, 4, 2000);  // per step: linear (x), linear (h), add, tanh
  const std::string dot = viz::to_dot({loss});
  // The parameters feed every folded step: one edge each into the summary, counted (×N).
  BOOST_TEST(count(dot, " -> fold0 [label=\"[8,8] ×") == 1u);
  BOOST_TEST(count(dot, " -> fold0 [label=\"[8,4] ×") == 1u);
  BOOST_TEST(count(dot, " -> fold0 [label=\"[8] ×") == 1u);
  // The step before the summary feeds it, the summary feeds the last step: no other edges.
  BOOST_TEST(count(dot, " -> fold0 [label=\"[1,8]\"]") == 1u);
  BOOST_TEST(count(dot, "fold0 -> ") == 1u);
}

BOOST_AUTO_TEST_CASE(rnn_cell_over_2000_steps_folds) {
#ifndef XGRAD_TEST_HAVE_RNN_CELL
  BOOST_TEST_MESSAGE("nn::RNNCell does not exist yet: skipped");
#else
  manual_seed(4);
  nn::RNNCell cell(4, 8);
  Tensor h;
  for (int t = 0; t < 2000; ++t) h = cell.forward(randn({1, 4}), h);
  const Tensor loss = h.sum();
  const auto nodes = recording_order(loss);
  // Ops per step: everything recorded between two tanh nodes.
  std::vector<std::size_t> tanhs;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i]->name() == "tanh") tanhs.push_back(i);
  BOOST_REQUIRE(tanhs.size() == 2000u);
  expect_folded_rnn(loss, tanhs[tanhs.size() - 1] - tanhs[tanhs.size() - 2], 2000);
#endif
}

BOOST_AUTO_TEST_CASE(deep_stack_of_identical_layers_folds) {
  manual_seed(5);
  nn::Sequential stack;
  for (int i = 0; i < 300; ++i) {
    stack.push_back(std::make_shared<nn::Linear>(16, 16));
    stack.push_back(std::make_shared<nn::Tanh>());
  }
  Tensor loss = stack(randn({2, 16})).sum();
  const std::string dot = viz::to_dot({loss});
  const auto ids = node_ids(dot);
  BOOST_TEST(recording_order(loss).size() == 300u * 4 + 1);  // linear, weight, bias, tanh; sum
  BOOST_TEST(ids.size() <= 500u);
  BOOST_TEST(ids.count("fold0") == 1u);
  // The first and last layers are drawn with their parameters' names; the summary names the
  // modules its repeats span.
  BOOST_TEST(dot.find("\"0.weight\\n[16,16]\"") != std::string::npos);
  BOOST_TEST(dot.find("\"598.weight\\n[16,16]\"") != std::string::npos);
  BOOST_TEST(dot.find("×298 repeats of a block of 4 nodes") != std::string::npos);
  BOOST_TEST(dot.find("\\nin 2, 3 … 596, 597\"") != std::string::npos);
  const std::size_t drawn = rendered_nodes(dot);
  if (drawn) BOOST_TEST(drawn == ids.size());
}

BOOST_AUTO_TEST_CASE(small_graphs_and_max_nodes_zero_never_fold) {
  // By node count alone (no size budget): 20 steps stay unfolded.
  viz::DotOptions count_only;
  count_only.max_pixels = 0;
  const Tensor small = rnn_by_hand(20);
  const std::string dot = viz::to_dot({small}, count_only);
  BOOST_TEST(dot.find("fold") == std::string::npos);
  BOOST_TEST(node_ids(dot).size() == recording_order(small).size() + 1);
  // The default size budget (4,000 px) folds the 20 steps, a chain far taller than that ...
  BOOST_TEST(viz::to_dot({small}).find("fold0") != std::string::npos);
  // ... but not 3 of them, which fit.
  BOOST_TEST(viz::to_dot({rnn_by_hand(3)}).find("fold0") == std::string::npos);

  const Tensor big = rnn_by_hand(2000);
  viz::DotOptions opts;
  opts.max_nodes = 0;  // never folds, whatever the budget
  const std::string all = viz::to_dot({big}, opts);
  BOOST_TEST(all.find("fold0") == std::string::npos);
  BOOST_TEST(node_ids(all).size() == recording_order(big).size() + 1);
  // A higher limit folds only as much as needed... here one fold is always enough.
  opts.max_pixels = 0;
  opts.max_nodes = 5000;
  BOOST_TEST(viz::to_dot({big}, opts).find("fold0") != std::string::npos);
  opts.max_nodes = 10000;
  BOOST_TEST(viz::to_dot({big}, opts).find("fold0") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(folding_is_deterministic) {
  const std::string a = viz::to_dot({rnn_by_hand(1000)});
  const std::string b = viz::to_dot({rnn_by_hand(1000)});
  BOOST_TEST(a == b);
  BOOST_TEST(a.find("fold0") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
