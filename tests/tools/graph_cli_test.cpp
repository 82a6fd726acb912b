// xgrad-graph as a user runs it: the graph of one training step as DOT and SVG, with
// gradients or as the backward graph, for the MLP (and the CNN and LSTM when they exist); a
// folded RNN; anomaly detection naming log and its line; clear errors for bad input and a
// missing Graphviz. And xgrad-train --dot, which uses the same writer.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/data/idx.hpp"

namespace fs = std::filesystem;

using xgrad::testing::have_dot;

namespace {

// The tools are in the build folder, one level above this test (build/tests/graph_cli_test),
// unless CMake says where (XGRAD_GRAPH_BIN / XGRAD_TRAIN_BIN).
std::string tool(const std::string& name) {
#ifdef XGRAD_GRAPH_BIN
  if (name == "xgrad-graph") return XGRAD_GRAPH_BIN;
#endif
#ifdef XGRAD_TRAIN_BIN
  if (name == "xgrad-train") return XGRAD_TRAIN_BIN;
#endif
  const fs::path self = fs::read_symlink("/proc/self/exe");
  const fs::path bin = self.parent_path().parent_path() / name;
  BOOST_REQUIRE_MESSAGE(fs::exists(bin),
                        bin << " is missing: build it first (ninja " << name << ")");
  return bin.string();
}

using xgrad::testing::slurp;

fs::path temp(const std::string& name) {
  return xgrad::testing::temp_path(name);
}

using xgrad::testing::Run;

Run run(const std::string& program, const std::string& args, const std::string& env = "") {
  return xgrad::testing::run_command(env + " " + tool(program) + " " + args);
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(graph_cli)

BOOST_AUTO_TEST_CASE(mlp_step_as_dot_and_svg) {
  const fs::path dot = temp("xgrad_graph_mlp.dot"), svg = temp("xgrad_graph_mlp.svg");
  Run r = run("xgrad-graph", "--batch-size 4 --out " + dot.string() +
                                 (have_dot() ? " --svg " + svg.string() : ""));
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  const std::string text = slurp(dot);
  BOOST_TEST(text.rfind("digraph xgrad {", 0) == 0u);
  BOOST_TEST(text.find("\"fc1.weight\\n[256,784]\"") != std::string::npos);
  BOOST_TEST(text.find("\"images\\n[4,784] float32\"") != std::string::npos);
  BOOST_TEST(text.find("subgraph \"cluster_fc2\"") != std::string::npos);
  BOOST_TEST(text.find("one training step of the mlp (MLP)") != std::string::npos);
  if (have_dot()) {
    BOOST_TEST(slurp(svg).find("<svg") != std::string::npos);
    BOOST_TEST(slurp(svg).find("fc1.weight") != std::string::npos);
  }
  fs::remove(dot);
  fs::remove(svg);
  // Without --out and picture, the DOT text goes to stdout.
  Run s = run("xgrad-graph", "--batch-size 4");
  BOOST_TEST(s.code == 0);
  BOOST_TEST(s.out == text);
}

BOOST_AUTO_TEST_CASE(gradients_and_backward_views) {
  Run g = run("xgrad-graph", "--batch-size 8 --gradients");
  BOOST_REQUIRE_MESSAGE(g.code == 0, g.err);
  BOOST_TEST(count(g.out, "‖g‖ ") >= 12u);  // every op and parameter, and the legend
  BOOST_TEST(g.out.find("dead ") != std::string::npos);
  Run b = run("xgrad-graph", "--batch-size 8 --backward");
  BOOST_REQUIRE_MESSAGE(b.code == 0, b.err);
  BOOST_TEST(b.out.find("1. cross_entropy backward") != std::string::npos);
  BOOST_TEST(b.out.find("accumulate_grad\\nfc1.weight") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(other_models) {
  Run rnn = run("xgrad-graph", "--model rnn --steps 392 --batch-size 2");
  BOOST_REQUIRE_MESSAGE(rnn.code == 0, rnn.err);
  BOOST_TEST(rnn.out.find("fold0") != std::string::npos);
#if __has_include("xgrad/nn/cnn.hpp")
  Run cnn = run("xgrad-graph", "--model cnn --batch-size 2");
  BOOST_REQUIRE_MESSAGE(cnn.code == 0, cnn.err);
  BOOST_TEST(cnn.out.find("\"conv1.weight\\n[16,1,3,3]\"") != std::string::npos);
  BOOST_TEST(cnn.out.find("subgraph \"cluster_conv2\"") != std::string::npos);
#endif
#if __has_include("xgrad/nn/rnn.hpp")
  Run lstm = run("xgrad-graph", "--model lstm --batch-size 2");
  BOOST_REQUIRE_MESSAGE(lstm.code == 0, lstm.err);
  BOOST_TEST(lstm.out.find("lstm.weight_ih_l0") != std::string::npos);
  BOOST_TEST(lstm.out.find("subgraph \"cluster_lstm\"") != std::string::npos);
#endif
}

BOOST_AUTO_TEST_CASE(anomaly_names_log_and_its_line) {
  const fs::path dot = temp("xgrad_graph_log0.dot");
  Run r = run("xgrad-graph", "--model log0 --anomaly --gradients --out " + dot.string());
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err.find("anomaly detected: log: backward produced Inf") != std::string::npos);
  BOOST_TEST(r.err.find("'log' was called at ") != std::string::npos);
  BOOST_TEST(r.err.find("tools/xgrad-graph.cpp:") != std::string::npos);
  // The graph is still written, with what the backward got to see.
  BOOST_TEST(slurp(dot).find("log\\n[64,4] float32") != std::string::npos);
  fs::remove(dot);
  // Without --anomaly the NaN simply shows, in red.
  Run g = run("xgrad-graph", "--model log0 --gradients");
  BOOST_TEST(g.code == 0);
  BOOST_TEST(g.out.find("#f28b82") != std::string::npos);
  BOOST_TEST(g.out.find("first NaN/Inf gradient") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bad_input_is_one_line_and_exit_code_2) {
  for (const char* args :
       {"--model resnet", "--batch-size 0", "--no-such-flag", "--steps 5 --model rnn",
        "--svg graph.txt", "--png /no/such/folder/g.png", "--out /no/such/folder/g.dot"}) {
    Run r = run("xgrad-graph", args);
    BOOST_TEST(r.code == 2, args);
    BOOST_TEST(count(r.err, "\n") == 1u, args << ": " << r.err);
    BOOST_TEST(r.err.rfind("xgrad-graph: ", 0) == 0u, args);
  }
  // Output checks come first and name the flag: no step is computed for nothing.
  BOOST_TEST(run("xgrad-graph", "--svg graph.txt")
                 .err.find("--svg: cannot tell the picture "
                           "format of 'graph.txt'") != std::string::npos);
  BOOST_TEST(run("xgrad-graph", "--out /no/such/folder/g.dot").err.find("--out: the folder") !=
             std::string::npos);
  BOOST_TEST(run("xgrad-graph", "--model resnet").err.find("choose mlp") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(missing_graphviz_still_writes_the_dot_file) {
  const fs::path dot = temp("xgrad_graph_nodot.dot"), svg = temp("xgrad_graph_nodot.svg");
  Run r = run("xgrad-graph", "--batch-size 2 --out " + dot.string() + " --svg " + svg.string(),
              "PATH=/nonexistent");
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err.find("apt-get install graphviz") != std::string::npos);
  BOOST_TEST(slurp(dot).rfind("digraph", 0) == 0u);
  BOOST_TEST(!fs::exists(svg));
  fs::remove(dot);
}

BOOST_AUTO_TEST_CASE(xgrad_train_dot_uses_the_same_writer) {
  // A tiny dataset in the IDX layout, one step of training, the graph of that step.
  const fs::path dir = temp("xgrad_graph_cli_data");
  fs::create_directories(dir);
  for (auto [prefix, n] : {std::pair<std::string, std::int64_t>{"train", 20}, {"t10k", 10}}) {
    xgrad::data::IdxArray images{{n, 28, 28}, std::vector<std::uint8_t>(n * 784, 7)};
    xgrad::data::IdxArray labels{{n}, std::vector<std::uint8_t>(n, 3)};
    xgrad::data::write_idx(dir / (prefix + "-images-idx3-ubyte.gz"), images);
    xgrad::data::write_idx(dir / (prefix + "-labels-idx1-ubyte.gz"), labels);
  }
  const fs::path dot = temp("xgrad_train_step.dot"), svg = temp("xgrad_train_step.svg");
  Run r = run("xgrad-train",
              "--data " + dir.string() + " --max-steps 1 --batch-size 4 --dot " + dot.string());
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  const std::string text = slurp(dot);
  BOOST_TEST(text.find("subgraph \"cluster_fc1\"") != std::string::npos);
  BOOST_TEST(text.find("\"loss\\n[]\"") != std::string::npos);
  // The batch is drawn as the graph's inputs.
  BOOST_TEST(text.find("\"images\\n[4,784] float32\"") != std::string::npos);
  BOOST_TEST(text.find("\"labels\\n[4] int64\"") != std::string::npos);
  if (have_dot()) {
    Run s = run("xgrad-train",
                "--data " + dir.string() + " --max-steps 1 --batch-size 4 --dot " + svg.string());
    BOOST_REQUIRE_MESSAGE(s.code == 0, s.err);
    BOOST_TEST(slurp(svg).find("<svg") != std::string::npos);
  }
  fs::remove(dot);
  fs::remove(svg);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
