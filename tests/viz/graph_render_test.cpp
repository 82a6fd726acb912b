// Graphviz reads what viz::to_dot writes: the MLP, the CNN (when nn::CNN exists) and a graph
// with a user-defined op (examples/swish.hpp) render with `dot -Tsvg` without a word on
// stderr, the rendered picture has exactly the graph's nodes and edges, chosen nodes carry
// the right labels, a NaN gradient is drawn red; viz::render and write_graph write pictures
// atomically and explain how to install Graphviz when it is missing.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../../examples/swish.hpp"
#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/viz/dot.hpp"
#include "xgrad/viz/gradients.hpp"
#include "xgrad/viz/render.hpp"

#if __has_include("xgrad/nn/cnn.hpp")
#include "xgrad/nn/cnn.hpp"
#define XGRAD_TEST_HAVE_CNN 1
#endif
#if __has_include("xgrad/nn/rnn.hpp")
#include "xgrad/nn/rnn.hpp"
#define XGRAD_TEST_HAVE_LSTM 1
#endif

using namespace xgrad;
using xgrad::testing::expect_error;
using xgrad::testing::have_dot;
using xgrad::testing::list_dir;
using xgrad::testing::slurp;
using xgrad::testing::TempDir;

namespace {

// What Graphviz drew: per node id, the text of its SVG group; per edge, "tail->head".
struct Svg {
  std::map<std::string, std::string> nodes;
  std::vector<std::string> edges;
  std::set<std::string> clusters;
  std::string text;
};

std::string unescape_xml(std::string s) {
  const std::pair<const char*, const char*> entities[] = {{"&#45;", "-"}, {"&gt;", ">"},
                                                          {"&lt;", "<"},  {"&quot;", "\""},
                                                          {"&#39;", "'"}, {"&amp;", "&"}};
  for (auto [from, to] : entities) {
    for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + 1))
      s.replace(p, std::string(from).size(), to);
  }
  return s;
}

Svg parse_svg(const std::string& svg) {
  Svg out;
  out.text = svg;
  for (const std::string kind : {"node", "edge", "cluster"}) {
    const std::string marker = "class=\"" + kind + "\">";
    for (std::size_t p = svg.find(marker); p != std::string::npos; p = svg.find(marker, p + 1)) {
      const std::size_t t0 = svg.find("<title>", p) + 7, t1 = svg.find("</title>", t0);
      const std::size_t end = svg.find("</g>", t1);
      const std::string title = unescape_xml(svg.substr(t0, t1 - t0));
      if (kind == "node") out.nodes[title] = svg.substr(t1, end - t1);
      if (kind == "edge") out.edges.push_back(title);
      if (kind == "cluster") out.clusters.insert(title);
    }
  }
  return out;
}

// Renders DOT text with `dot -Tsvg`; requires success within `seconds` and an empty stderr
// (no warnings).
Svg render_svg(const std::string& dot_text, int seconds = 60) {
  TempDir dir;
  const std::string in = dir.path + "/g.dot", out = dir.path + "/g.svg", err = dir.path + "/err";
  std::ofstream(in) << dot_text;
  const int rc = std::system(("timeout " + std::to_string(seconds) + " dot -Tsvg '" + in +
                              "' -o '" + out + "' 2>'" + err + "'")
                                 .c_str());
  BOOST_REQUIRE_MESSAGE(rc == 0, "dot failed: " << slurp(err));
  BOOST_TEST(slurp(err) == "", "dot printed: " << slurp(err));
  return parse_svg(slurp(out));
}

// Nodes and edges the graph really has, by walking grad_fn / next_edges; ids as to_dot
// numbers them (position in recording order).
struct Real {
  std::vector<const autograd::Node*> nodes;  // recording order
  std::size_t edges = 0;
  std::string id(std::size_t i) const {
    return (nodes[i]->leaf() ? "leaf" : "op") + std::to_string(i);
  }
  std::string id_of(std::string_view name, int nth = 0) const {
    for (std::size_t i = 0; i < nodes.size(); ++i)
      if (nodes[i]->name() == name && nth-- == 0) return id(i);
    BOOST_FAIL("no node named " << name);
    return "";
  }
};

Real walk(const Tensor& out) {
  Real r;
  std::set<const autograd::Node*> seen{out.grad_fn().get()};
  std::vector<const autograd::Node*> stack{out.grad_fn().get()};
  while (!stack.empty()) {
    const autograd::Node* n = stack.back();
    stack.pop_back();
    r.nodes.push_back(n);
    for (const auto& e : n->next_edges()) {
      if (!e.valid()) continue;
      ++r.edges;
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }
  std::sort(r.nodes.begin(), r.nodes.end(),
            [](auto* a, auto* b) { return a->sequence_nr() < b->sequence_nr(); });
  return r;
}

std::size_t graph_nodes(const Svg& s) {
  std::size_t n = 0;
  for (auto& [id, text] : s.nodes) n += id.rfind("legend_", 0) != 0;
  return n;
}

void expect_label(const Svg& s, const std::string& id, const std::vector<std::string>& lines) {
  BOOST_REQUIRE_MESSAGE(s.nodes.count(id), "node " << id << " was not drawn");
  for (const auto& line : lines)
    BOOST_CHECK_MESSAGE(
        s.nodes.at(id).find(">" + line + "</text>") != std::string::npos,
        "node " << id << " lacks the label line '" << line << "': " << s.nodes.at(id));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(graph_render)

BOOST_AUTO_TEST_CASE(mlp_renders_with_the_real_counts_and_labels) {
  if (!have_dot()) {
    BOOST_TEST_MESSAGE("Graphviz is not installed: skipped");
    return;
  }
  manual_seed(0);
  nn::MLP mlp({784, 256, 128, 10});
  Tensor loss;
  {
    viz::record_data_inputs inputs;
    Tensor images = randn({4, 784}).set_name("images");
    Tensor labels = tensor({1.0, 0.0, 9.0, 3.0}, int64).set_name("labels");
    loss = cross_entropy(mlp(images), labels).set_name("loss");
  }
  const Real real = walk(loss);
  BOOST_TEST(real.nodes.size() == 12u);  // 6 ops, 6 parameters
  const Svg svg = render_svg(viz::to_dot({loss}));
  // + the output, the images and the labels (recorded as data inputs); edges + output +
  // images -> fc1 + labels -> cross_entropy.
  BOOST_TEST(graph_nodes(svg) == real.nodes.size() + 1 + 2);
  BOOST_TEST(svg.edges.size() == real.edges + 1 + 2);
  BOOST_TEST(svg.nodes.size() == graph_nodes(svg) + 4);  // the legend: 4 kinds
  expect_label(svg, real.id_of("linear"), {"linear", "[4,256] float32"});
  expect_label(svg, "leaf1", {"fc1.weight", "[256,784]"});
  expect_label(svg, real.id_of("cross_entropy"), {"cross_entropy", "[] float32"});
  expect_label(svg, "in0", {"images", "[4,784] float32"});
  expect_label(svg, "in1", {"labels", "[4] int64"});
  expect_label(svg, "out0", {"loss", "[]"});
  // One cluster per module, plus the legend's.
  BOOST_TEST((svg.clusters == std::set<std::string>{"cluster_fc1", "cluster_fc2", "cluster_fc3",
                                                    "cluster_legend"}));
  BOOST_TEST(svg.text.find(">fc2 (Linear)</text>") != std::string::npos);
  const std::set<std::string> edges(svg.edges.begin(), svg.edges.end());
  BOOST_TEST(edges.count("leaf1->op0"));
  BOOST_TEST(edges.count("in0->op0"));
  BOOST_TEST(edges.count("in1->" + real.id_of("cross_entropy")));
  BOOST_TEST(edges.count(real.id_of("cross_entropy") + "->out0"));
}

BOOST_AUTO_TEST_CASE(cnn_renders_with_the_real_counts_and_labels) {
#ifndef XGRAD_TEST_HAVE_CNN
  BOOST_TEST_MESSAGE("nn::CNN does not exist yet: skipped");
#else
  if (!have_dot()) {
    BOOST_TEST_MESSAGE("Graphviz is not installed: skipped");
    return;
  }
  manual_seed(0);
  nn::CNN cnn;
  Tensor loss = cross_entropy(cnn(randn({2, 784})), tensor({3.0, 7.0}, int64));
  const Real real = walk(loss);
  const Svg svg = render_svg(viz::to_dot({loss}));
  BOOST_TEST(graph_nodes(svg) == real.nodes.size() + 1);
  BOOST_TEST(svg.edges.size() == real.edges + 1);
  std::size_t params = 0;
  for (auto* n : real.nodes) params += n->leaf() != nullptr;
  BOOST_TEST(params == 6u);  // conv1, conv2, fc: weight and bias each
  // The first conv's weight (created as conv1 records), the second conv, the classifier.
  expect_label(svg, "leaf1", {"conv1.weight", "[16,1,3,3]"});
  expect_label(svg, real.id_of("conv2d", 1), {"conv2d", "[2,32,14,14] float32"});
  expect_label(svg, real.id_of("cross_entropy"), {"cross_entropy", "[] float32"});
  BOOST_TEST(svg.clusters.count("cluster_conv1"));
  BOOST_TEST(svg.clusters.count("cluster_conv2"));
  BOOST_TEST(svg.clusters.count("cluster_fc"));
#endif
}

BOOST_AUTO_TEST_CASE(big_unfolded_graph_renders_in_seconds) {
#ifndef XGRAD_TEST_HAVE_LSTM
  BOOST_TEST_MESSAGE("nn::LSTM does not exist yet: skipped");
#else
  if (!have_dot()) {
    BOOST_TEST_MESSAGE("Graphviz is not installed: skipped");
    return;
  }
  // An LSTM over 28 steps: ~470 nodes, under the fold limit, with long edges from the shared
  // weights, the per-step inputs and the stacked outputs. With edge labels as Graphviz lays
  // them out by default, `dot` 2.43 took hours on it; to_dot switches to xlabels.
  manual_seed(0);
  nn::LSTM lstm(28, 64);
  Tensor loss = lstm(randn({28, 2, 28})).sum();
  const Real real = walk(loss);
  BOOST_TEST(real.nodes.size() > 150u);
  viz::DotOptions unfolded;
  unfolded.max_pixels = 0;  // no size budget: the default one folds the time steps
  const std::string dot = viz::to_dot({loss}, unfolded);
  BOOST_TEST(dot.find("fold0") == std::string::npos);
  BOOST_TEST(dot.find(" [xlabel=\"[") != std::string::npos);
  BOOST_TEST(dot.find("nslimit=1") != std::string::npos);
  const Svg svg = render_svg(dot, 120);
  BOOST_TEST(graph_nodes(svg) == real.nodes.size() + 1);
  BOOST_TEST(svg.edges.size() == real.edges + 1);
  BOOST_TEST(svg.clusters.count("cluster_legend") == 1u);
#endif
}

BOOST_AUTO_TEST_CASE(custom_op_renders_with_its_name) {
  if (!have_dot()) {
    BOOST_TEST_MESSAGE("Graphviz is not installed: skipped");
    return;
  }
  manual_seed(1);
  Tensor x = randn({3, 4}, float64).requires_grad_();
  Tensor w = randn({4}, float64).requires_grad_().set_name("w");
  Tensor loss = swish(x * w, 1.5).sum();
  const Real real = walk(loss);
  BOOST_TEST(real.nodes.size() == 5u);  // x, w (leaves), mul, swish, sum
  const Svg svg = render_svg(viz::to_dot({loss}));
  BOOST_TEST(graph_nodes(svg) == real.nodes.size() + 1);
  BOOST_TEST(svg.edges.size() == real.edges + 1);
  expect_label(svg, real.id_of("swish"), {"swish", "[3,4] float64"});
  expect_label(svg, real.id_of("sum"), {"sum", "[] float64"});
  // An unnamed leaf that requires grad is an input (parallelogram); a named one a parameter.
  expect_label(svg, real.id_of("accumulate_grad"), {"input", "[3,4] float64"});
  BOOST_TEST(svg.nodes.at(real.id_of("accumulate_grad")).find("<polygon") != std::string::npos);
  expect_label(svg, real.id_of("accumulate_grad", 1), {"w", "[4]"});
  BOOST_TEST(svg.nodes.at(real.id_of("accumulate_grad", 1)).find("<ellipse") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(nan_gradient_is_drawn_red) {
  if (!have_dot()) {
    BOOST_TEST_MESSAGE("Graphviz is not installed: skipped");
    return;
  }
  Tensor x = tensor({1.0, 2.0, 3.0}, float64).requires_grad_().set_name("x");
  Tensor y = x * 2.0;
  Tensor loss = log(y - y).sum();  // d/dy = 1/0 - 1/0: Inf into sub, NaN into mul and x
  viz::GradientRecorder grads({loss});
  loss.backward();
  BOOST_TEST(std::isnan(to_xarray<double>(x.grad())(0)));
  const Real real = walk(loss);
  const std::string dot =
      viz::to_dot({loss}, {.kind = viz::GraphKind::gradients, .gradients = &grads});
  const Svg svg = render_svg(dot);
  BOOST_TEST(graph_nodes(svg) == real.nodes.size() + 1);
  auto red = [&](const std::string& id) {
    return svg.nodes.at(id).find("fill=\"#f28b82\"") != std::string::npos &&
           svg.nodes.at(id).find("stroke=\"#c5221f\"") != std::string::npos;
  };
  // NaN reaches x and mul's output, Inf sub's output; log and sum got finite gradients.
  BOOST_TEST(red(real.id_of("accumulate_grad")));
  BOOST_TEST(red(real.id_of("mul")));
  BOOST_TEST(red(real.id_of("sub")));
  BOOST_TEST(!red(real.id_of("log")));
  BOOST_TEST(!red(real.id_of("sum")));
  expect_label(svg, real.id_of("accumulate_grad"), {"x", "grad ‖·‖ nan (3 NaN, 0 Inf)"});
  // The graph says where the first non-finite gradient came from: log's backward.
  BOOST_TEST(dot.find("first NaN/Inf gradient: at " + real.id_of("sub") +
                      " (sub), produced by the backward of 'log'") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(render_writes_svg_png_and_pdf_atomically) {
  if (!have_dot()) {
    BOOST_TEST_MESSAGE("Graphviz is not installed: skipped");
    return;
  }
  TempDir dir;
  Tensor a = tensor({1.0, 2.0}, float64).requires_grad_().set_name("a");
  const std::string text = viz::to_dot({(a * a).sum()});
  viz::render(text, dir.path + "/g.svg");
  viz::render(text, dir.path + "/g.png");
  viz::render(text, dir.path + "/g.pdf");
  viz::render(text, dir.path + "/picture", "svg");
  BOOST_TEST(slurp(dir.path + "/g.svg").find("<svg") != std::string::npos);
  BOOST_TEST(slurp(dir.path + "/g.png").substr(1, 3) == "PNG");
  BOOST_TEST(slurp(dir.path + "/g.pdf").substr(0, 5) == "%PDF-");
  BOOST_TEST(slurp(dir.path + "/picture").find("<svg") != std::string::npos);
  // Nothing else is left behind (no temporary files).
  BOOST_TEST(
      (list_dir(dir.path) == std::vector<std::string>{"g.pdf", "g.png", "g.svg", "picture"}));

  // Graphviz's own error is passed on, and the old picture is untouched.
  const std::string before = slurp(dir.path + "/g.svg");
  expect_error([&] { viz::render("digraph { a -> }", dir.path + "/g.svg"); },
               {"render", "dot -Tsvg", "failed", "syntax error"});
  BOOST_TEST(slurp(dir.path + "/g.svg") == before);
  BOOST_TEST(list_dir(dir.path).size() == 4u);
  expect_error([&] { viz::render(text, dir.path + "/g.txt"); }, {"render", ".svg, .png or .pdf"});
  expect_error([&] { viz::render(text, dir.path + "/missing/g.svg"); }, {"render", "missing"});
}

BOOST_AUTO_TEST_CASE(write_graph_chooses_text_or_picture_by_extension) {
  TempDir dir;
  Tensor a = tensor({1.0, 2.0}, float64).requires_grad_().set_name("a");
  Tensor loss = (a * a).sum();
  viz::write_graph(dir.path + "/g.dot", {loss});
  BOOST_TEST(slurp(dir.path + "/g.dot") == viz::to_dot({loss}));
  if (!have_dot()) return;
  viz::write_graph(dir.path + "/g.svg", {loss}, {.title = "squares"});
  const std::string svg = slurp(dir.path + "/g.svg");
  BOOST_TEST(svg.find("<svg") != std::string::npos);
  BOOST_TEST(svg.find(">squares</text>") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(writers_never_replace_a_special_file) {
  // Renaming a temporary file over /dev/stdout or /dev/null would replace the device with a
  // regular file. A FIFO stands in for them: it must still be a FIFO, and have got the text.
  TempDir dir;
  const std::string fifo = dir.path + "/graph.svg";
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto read_all = [&fifo](std::string& out) {
    std::ifstream f(fifo, std::ios::binary);
    out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  };
  Tensor a = tensor({1.0, 2.0}, float64).requires_grad_().set_name("a");
  Tensor loss = (a * a).sum();
  std::string got;
  std::thread reader(read_all, std::ref(got));
  viz::write_dot(fifo, {loss});
  reader.join();
  BOOST_TEST(got == viz::to_dot({loss}));
  struct stat st {};
  BOOST_REQUIRE(::stat(fifo.c_str(), &st) == 0);
  BOOST_TEST(S_ISFIFO(st.st_mode));
  if (have_dot()) {
    std::thread picture_reader(read_all, std::ref(got));
    viz::render(viz::to_dot({loss}), fifo);
    picture_reader.join();
    BOOST_TEST(got.find("<svg") != std::string::npos);
    BOOST_REQUIRE(::stat(fifo.c_str(), &st) == 0);
    BOOST_TEST(S_ISFIFO(st.st_mode));
  }
  BOOST_TEST((list_dir(dir.path) == std::vector<std::string>{"graph.svg"}));
}

BOOST_AUTO_TEST_CASE(missing_graphviz_says_how_to_install_it) {
  TempDir dir;  // an empty folder as the whole PATH: no `dot` anywhere
  const char* old = std::getenv("PATH");
  const std::string saved = old ? old : "";
  ::setenv("PATH", dir.path.c_str(), 1);
  BOOST_TEST(!viz::graphviz_available());
  BOOST_TEST(viz::graphviz_dot() == "");
  Tensor a = tensor({1.0}, float64).requires_grad_();
  expect_error([&] { viz::render(viz::to_dot({a.sum()}), dir.path + "/g.svg"); },
               {"render", "Graphviz", "not on PATH", "apt-get install graphviz"});
  expect_error([&] { viz::write_graph(dir.path + "/g.png", {a.sum()}); },
               {"apt-get install graphviz"});
  ::setenv("PATH", saved.c_str(), 1);
  BOOST_TEST(list_dir(dir.path).empty());
}

BOOST_AUTO_TEST_SUITE_END()
