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

// Width and height of a PNG, from its IHDR chunk (bytes 16..23, big-endian).
std::pair<std::uint32_t, std::uint32_t> png_size(const fs::path& p) {
  const std::string b = slurp(p);
  BOOST_REQUIRE_MESSAGE(b.size() > 24 && b.compare(1, 3, "PNG") == 0, p << " is not a PNG");
  auto be32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) v = (v << 8) | static_cast<unsigned char>(b[at + k]);
    return v;
  };
  return {be32(16), be32(20)};
}

// The scale Graphviz applied to fit the `size` budget (1 when it did not have to shrink).
double svg_scale(const std::string& svg) {
  const std::size_t p = svg.find("transform=\"scale(");
  if (p == std::string::npos) return 1;
  return std::stod(svg.substr(p + 17));
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
  BOOST_TEST(count(g.out, "grad ‖·‖ ") >= 12u);  // every op and parameter, and the legend
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
                 .err.find("--svg: cannot tell the format of 'graph.txt'") != std::string::npos);
  // --out takes the format from the name too: an unknown one is refused before any work.
  Run txt = run("xgrad-graph", "--out graph.txt");
  BOOST_TEST(txt.code == 2);
  BOOST_TEST(txt.err.find("--out: cannot tell the format of 'graph.txt'") != std::string::npos);
  BOOST_TEST(!fs::exists("graph.txt"));
  BOOST_TEST(run("xgrad-graph", "--out /no/such/folder/g.dot").err.find("--out: the folder") !=
             std::string::npos);
  BOOST_TEST(run("xgrad-graph", "--model resnet").err.find("choose mlp") != std::string::npos);
}

// --out FILE.svg / .png draws, --out FILE.dot writes text: one option, the format from the name.
BOOST_AUTO_TEST_CASE(out_takes_the_format_from_the_name) {
  const fs::path dot = temp("xgrad_graph_out.dot"), gv = temp("xgrad_graph_out.gv");
  BOOST_REQUIRE(run("xgrad-graph", "--batch-size 2 --out " + dot.string()).code == 0);
  BOOST_REQUIRE(run("xgrad-graph", "--batch-size 2 --out " + gv.string()).code == 0);
  BOOST_TEST(slurp(dot) == slurp(gv));
  BOOST_TEST(slurp(dot).rfind("digraph", 0) == 0u);
  if (have_dot()) {
    const fs::path svg = temp("xgrad_graph_out.svg"), png = temp("xgrad_graph_out.png");
    Run r = run("xgrad-graph", "--batch-size 2 --out " + svg.string() + " --png " + png.string());
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    BOOST_TEST(slurp(svg).find("<svg") != std::string::npos);
    BOOST_TEST(png_size(png).first > 0u);
    fs::remove(svg);
    fs::remove(png);
  }
  fs::remove(dot);
  fs::remove(gv);
}

// Gradient ranges are labelled on a line of their own, never "[a, b]" under a shape.
BOOST_AUTO_TEST_CASE(gradient_labels_cannot_be_mistaken_for_shapes) {
  Run g = run("xgrad-graph", "--batch-size 4 --gradients");
  BOOST_REQUIRE_MESSAGE(g.code == 0, g.err);
  BOOST_TEST(count(g.out, "\\ngrad ‖·‖ ") >= 12u);
  BOOST_TEST(count(g.out, ", min ") >= 12u);
  BOOST_TEST(g.out.find("\\n[-") == std::string::npos);       // no bare range under a shape
  BOOST_TEST(g.out.find("min \u2212") != std::string::npos);  // a real minus sign
}

// Must-show 4: the LSTM, the 784-step RNN and the CNN with gradients render to PNGs of at most
// 4,000 px on their longer side, the recurrent ones with their time steps folded — and the
// folding, not Graphviz's shrinking, does most of the work (scale at least 0.5).
void expect_fits_4000_pixels(const std::string& args, bool folds) {
  if (!have_dot()) {
    BOOST_TEST_MESSAGE("Graphviz's dot is not installed: skipping");
    return;
  }
  const fs::path png = temp("xgrad_graph_big.png"), svg = temp("xgrad_graph_big.svg");
  Run r =
      run("xgrad-graph", args + " --gradients --out " + png.string() + " --svg " + svg.string());
  BOOST_REQUIRE_MESSAGE(r.code == 0, args << ": " << r.err);
  const auto [w, h] = png_size(png);
  BOOST_TEST(std::max(w, h) <= 4000u, args << ": " << w << " x " << h);
  BOOST_TEST(std::min(w, h) > 100u, args);
  const std::string text = slurp(svg);
  BOOST_TEST(svg_scale(text) >= 0.5, args << ": scaled by " << svg_scale(text));
  if (folds) BOOST_TEST(text.find("repeats of a block") != std::string::npos, args);
  BOOST_TEST_MESSAGE(args << ": " << w << " x " << h << " px, scale " << svg_scale(text));
  fs::remove(png);
  fs::remove(svg);
}

BOOST_AUTO_TEST_CASE(rnn_over_784_steps_fits_4000_pixels) {
  expect_fits_4000_pixels("--model rnn --steps 784 --batch-size 2", true);
}

#if __has_include("xgrad/nn/cnn.hpp")
BOOST_AUTO_TEST_CASE(cnn_fits_4000_pixels) {
  expect_fits_4000_pixels("--model cnn --batch-size 2", false);
}
#endif

#if __has_include("xgrad/nn/rnn.hpp")
BOOST_AUTO_TEST_CASE(lstm_fits_4000_pixels) {
  expect_fits_4000_pixels("--model lstm --batch-size 2", true);
}
#endif

// --memory: every op coloured by its saved bytes, and the report printed.
BOOST_AUTO_TEST_CASE(memory_report_and_colours) {
  const fs::path dot = temp("xgrad_graph_memory.dot");
  Run r = run("xgrad-graph", "--batch-size 4 --memory --out " + dot.string());
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  BOOST_TEST(r.out.find("saved for backward:") != std::string::npos);
  BOOST_TEST(r.out.find("fc1") != std::string::npos);
  const std::string text = slurp(dot);
  BOOST_TEST(text.find("saves 12.2 KiB") != std::string::npos);  // the [4,784] batch fc1 keeps
  // With gradients too: the report is taken before backward frees the tensors.
  Run g = run("xgrad-graph", "--batch-size 4 --memory --gradients --out " + dot.string());
  BOOST_REQUIRE_MESSAGE(g.code == 0, g.err);
  BOOST_TEST(slurp(dot).find("saves 12.2 KiB") != std::string::npos);
  fs::remove(dot);
}

// Must-show 5: the MLP step against itself shows no difference; against the MLP whose fc2 has
// 64 units it names fc2.
BOOST_AUTO_TEST_CASE(diff_of_two_steps) {
  const fs::path dot = temp("xgrad_graph_diff.dot");
  Run same = run("xgrad-graph", "--batch-size 4 --diff mlp --out " + dot.string());
  BOOST_REQUIRE_MESSAGE(same.code == 0, same.err);
  BOOST_TEST(same.out.find("no difference") != std::string::npos, same.out);
  Run changed = run("xgrad-graph", "--batch-size 4 --diff mlp-fc2-64 --out " + dot.string());
  BOOST_REQUIRE_MESSAGE(changed.code == 0, changed.err);
  BOOST_TEST(changed.out.find("first difference: fc2") != std::string::npos, changed.out);
  BOOST_TEST(changed.out.find("param:fc2.weight: [128,256] float32 → [64,256] float32") !=
             std::string::npos);
  BOOST_TEST(slurp(dot).find("digraph xgrad_diff") == 0u);
  fs::remove(dot);
}

// Must-show 6: every command of README's graph section runs (with build/ the build folder).
BOOST_AUTO_TEST_CASE(readme_graph_commands_work) {
  const std::string readme = slurp(fs::path(XGRAD_TEST_DATA_DIR) / ".." / ".." / "README.md");
  const std::size_t section = readme.find("## Seeing how gradients flow");
  BOOST_REQUIRE(section != std::string::npos);
  const std::size_t begin = readme.find("```sh\n", section) + 6;
  const std::size_t end = readme.find("```", begin);
  std::istringstream lines(readme.substr(begin, end - begin));
  const fs::path dir = temp("xgrad_graph_readme");
  fs::create_directories(dir);
  // The commands run side by side (each draws a picture: together they would take long).
  std::string line, script = "cd " + dir.string();
  int commands = 0;
  std::vector<std::string> ran;
  while (std::getline(lines, line)) {
    line = line.substr(0, line.find("  #"));
    if (line.rfind("build/xgrad-graph ", 0) != 0) continue;
    if (!have_dot() && line.find(".dot") == std::string::npos) continue;
    script += " && { (" + tool("xgrad-graph") + line.substr(17) + " >out" +
              std::to_string(commands) + " 2>&1; echo $? >rc" + std::to_string(commands) + ") & }";
    ran.push_back(line);
    ++commands;
  }
  xgrad::testing::run_command(script + " ; wait");
  for (int k = 0; k < commands; ++k) {
    const std::string rc = slurp(dir / ("rc" + std::to_string(k)));
    BOOST_TEST(rc == "0\n", ran[static_cast<std::size_t>(k)]
                                << ": exit " << rc << slurp(dir / ("out" + std::to_string(k))));
  }
  BOOST_TEST(commands >= 2);
  fs::remove_all(dir);
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
  if (have_dot()) {  // --out, the name the other tools use, is the same option
    Run s = run("xgrad-train",
                "--data " + dir.string() + " --max-steps 1 --batch-size 4 --out " + svg.string());
    BOOST_REQUIRE_MESSAGE(s.code == 0, s.err);
    BOOST_TEST(slurp(svg).find("<svg") != std::string::npos);
  }
  fs::remove(dot);
  fs::remove(svg);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
