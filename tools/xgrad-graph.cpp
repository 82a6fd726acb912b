// xgrad-graph: draws the graph of one training step of a model — DOT text and, when Graphviz is
// installed, SVG/PNG — optionally with the gradients of the step or as the backward graph.
//
//   xgrad-graph [--model mlp|mlp-fc2-64|cnn|lstm|rnn|log0] [--batch-size 64] [--steps 28]
//               [--seed 0] [--out FILE.dot|.gv|.svg|.png|.pdf] [--gradients] [--backward]
//               [--memory] [--diff MODEL] [--anomaly] [--max-nodes 500] [--max-pixels 4000]
//               [--no-clusters] [--no-legend] [--title TEXT]
//
// --out FILE writes the graph in the format its name ends with: DOT text for .dot/.gv, a
// picture drawn by Graphviz for .svg/.png/.pdf (a device such as /dev/stdout gets DOT text);
// any other name is refused (exit code 2). --svg FILE and --png FILE are older names of the
// same option (a second picture beside --out). --memory colours every op by the bytes it saved
// for backward and prints viz::memory_report; --diff MODEL records the step of --model and of
// MODEL (same seed) and draws and prints viz::diff of the two.
//
// The step runs on a random batch shaped like Fashion-MNIST's (the graph does not depend on
// the values): images [N, 784], labels [N]. cnn and lstm are there when nn::CNN
// (xgrad/nn/cnn.hpp) and nn::LSTM (xgrad/nn/rnn.hpp) are. rnn is an Elman RNN unrolled by hand
// over --steps steps (large graphs fold); log0 is loss = log(x − x).sum(), a deliberate
// NaN/Inf to show red gradients and, with --anomaly, anomaly detection naming the op and its
// line. Bad input prints one line on stderr and exits with code 2; a picture that cannot be
// rendered (no Graphviz) exits with code 1 after writing the DOT file.
#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xgrad/autograd/anomaly.hpp"
#include "xgrad/io/atomic_file.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/viz/diff.hpp"
#include "xgrad/viz/dot.hpp"
#include "xgrad/viz/gradients.hpp"
#include "xgrad/viz/memory.hpp"
#include "xgrad/viz/render.hpp"
#include "xgrad/xgrad.hpp"

#if __has_include("xgrad/nn/cnn.hpp")
#include "xgrad/nn/cnn.hpp"
#define XGRAD_GRAPH_HAVE_CNN 1
#endif
#if __has_include("xgrad/nn/rnn.hpp")
#include "xgrad/nn/rnn.hpp"
#define XGRAD_GRAPH_HAVE_LSTM 1
#endif

namespace po = boost::program_options;
using namespace xgrad;

namespace {

struct Config {
  std::string model = "mlp";
  std::int64_t batch_size = 64;
  std::int64_t steps = 28;
  std::uint64_t seed = 0;
  std::string out, svg, png, title, diff;
  bool gradients = false, backward = false, anomaly = false, memory = false;
  bool no_clusters = false, no_legend = false;
  std::size_t max_nodes = 500;
  double max_pixels = 4000;
};

std::string models() {
  std::string m = "mlp, mlp-fc2-64";
#ifdef XGRAD_GRAPH_HAVE_CNN
  m += ", cnn";
#endif
#ifdef XGRAD_GRAPH_HAVE_LSTM
  m += ", lstm";
#endif
  return m + ", rnn, log0";
}

#ifdef XGRAD_GRAPH_HAVE_LSTM
// Row-by-row classifier: the 28 rows of an image are the time steps of an LSTM (28 → 64), and
// the last hidden state goes through a Linear (64 → 10).
template <class L>
class LSTMClassifier : public nn::Module {
 public:
  LSTMClassifier() {
    lstm_ = register_module("lstm", std::make_shared<L>(28, 64));
    fc_ = register_module("fc", std::make_shared<nn::Linear>(64, 10));
  }
  std::string type_name() const override { return "LSTMClassifier"; }

 protected:
  Tensor forward(const Tensor& x) override {
    const std::int64_t n = x.size(0);
    Tensor seq = x.reshape({n, 28, 28}).permute({1, 0, 2});  // [T=28, N, 28]
    Tensor out = (*lstm_)(seq);                              // [T, N, 64]
    Tensor last = slice(out, 0, 27, 28).reshape({n, 64});    // the last step
    return (*fc_)(last);
  }

 private:
  std::shared_ptr<L> lstm_;
  std::shared_ptr<nn::Linear> fc_;
};
#endif

// An Elman RNN unrolled by hand over `steps` steps of 784/steps pixels (as many as divide),
// h = tanh(x_t·W_xᵀ + b_x + h·W_hᵀ), then a Linear on the last h.
class UnrolledRNN : public nn::Module {
 public:
  explicit UnrolledRNN(std::int64_t steps) : steps_(steps) {
    check(steps >= 1 && 784 % steps == 0, "--steps must divide 784 (1, 2, 4, 7, 14, 28, ...), got ",
          steps);
    input_ = register_module("input", std::make_shared<nn::Linear>(784 / steps, 32));
    hidden_ = register_module("hidden", std::make_shared<nn::Linear>(32, 32));
    fc_ = register_module("fc", std::make_shared<nn::Linear>(32, 10));
  }
  std::string type_name() const override { return "UnrolledRNN"; }

 protected:
  Tensor forward(const Tensor& x) override {
    const std::int64_t n = x.size(0), width = 784 / steps_;
    Tensor h = zeros({n, 32}, x.dtype());
    for (std::int64_t t = 0; t < steps_; ++t) {
      Tensor xt = slice(x, 1, t * width, (t + 1) * width);
      h = tanh((*input_)(xt) + (*hidden_)(h));
    }
    return (*fc_)(h);
  }

 private:
  std::int64_t steps_;
  std::shared_ptr<nn::Linear> input_, hidden_, fc_;
};

std::shared_ptr<nn::Module> make_model(const Config& c) {
  if (c.model == "mlp")
    return std::make_shared<nn::MLP>(std::vector<std::int64_t>{784, 256, 128, 10});
  if (c.model == "mlp-fc2-64")  // the MLP with one layer changed: fc2 has 64 units, not 128
    return std::make_shared<nn::MLP>(std::vector<std::int64_t>{784, 256, 64, 10});
  if (c.model == "rnn") return std::make_shared<UnrolledRNN>(c.steps);
#ifdef XGRAD_GRAPH_HAVE_CNN
  if (c.model == "cnn") return std::make_shared<nn::CNN>();
#endif
#ifdef XGRAD_GRAPH_HAVE_LSTM
  if (c.model == "lstm") return std::make_shared<LSTMClassifier<nn::LSTM>>();
#endif
  fail("unknown model '", c.model, "' (choose ", models(), ")");
}

// The deliberate NaN of --model log0: d/dx log(x − x) is 1/0 − 1/0.
Tensor log_of_zero(const Tensor& x) {
  return log(x - x).sum();
}

// The format of an output by its name: "dot" (.dot, .gv, or a device such as /dev/stdout),
// "svg", "png" or "pdf"; "" for any other name.
std::string format_of(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (ext == ".dot" || ext == ".gv") return "dot";
  if (ext == ".svg" || ext == ".png" || ext == ".pdf") return ext.substr(1);
  if (path.rfind("/dev/", 0) == 0) return "dot";
  return "";
}

// Fails before any work when an output cannot be written: its folder is missing, or its
// name does not say its format.
void check_outputs(const Config& c) {
  for (const auto& [flag, path] : {std::pair<const char*, const std::string&>{"--out", c.out},
                                   {"--svg", c.svg},
                                   {"--png", c.png}}) {
    if (path.empty()) continue;
    const std::filesystem::path folder = std::filesystem::absolute(path).parent_path();
    check(std::filesystem::is_directory(folder), flag, ": the folder '", folder.string(), "' of '",
          path, "' does not exist");
    check(!format_of(path).empty(), flag, ": cannot tell the format of '", path,
          "': name it .dot or .gv (DOT text), or .svg, .png or .pdf (drawn by Graphviz)");
  }
}

// One recorded training step.
struct Step {
  Tensor loss;
  std::shared_ptr<nn::Module> model;
  std::unique_ptr<viz::GradientRecorder> recorder;
  std::string what;
  int code = 0;
};

Step record_step(const Config& c, const std::string& model_name, bool with_gradients) {
  Step s;
  manual_seed(c.seed);
  std::optional<autograd::detect_anomaly> anomaly;
  if (c.anomaly) anomaly.emplace();
  {
    viz::record_data_inputs inputs;  // draw the images and labels too
    if (model_name == "log0") {
      Tensor x = randn({c.batch_size, 4}).requires_grad_();
      s.loss = log_of_zero(x);
      s.what = "loss = log(x - x).sum()";
    } else {
      Config mc = c;
      mc.model = model_name;
      s.model = make_model(mc);
      // The batch from a seed of its own: the same images whatever the model drew before
      // (--diff compares two models on one batch).
      manual_seed(c.seed + 1);
      Tensor images = randn({c.batch_size, 784}).set_name("images");
      std::vector<std::int64_t> classes(static_cast<std::size_t>(c.batch_size));
      for (std::size_t i = 0; i < classes.size(); ++i)
        classes[i] = static_cast<std::int64_t>(i % 10);
      Tensor labels = from_data(classes.data(), {c.batch_size}).set_name("labels");
      s.loss = cross_entropy((*s.model)(images), labels);
      s.what = "one training step of the " + model_name + " (" + s.model->type_name() + ")";
    }
  }
  s.loss.set_name("loss");
  if (with_gradients || c.anomaly) {
    if (with_gradients)
      s.recorder = std::make_unique<viz::GradientRecorder>(std::vector<Tensor>{s.loss});
    try {
      s.loss.backward(Tensor(), c.memory);  // --memory: keep the saved tensors to report them
    } catch (const Error& e) {
      if (!c.anomaly) throw;
      // What anomaly detection is for: report it, and still draw what was recorded.
      std::cerr << "xgrad-graph: anomaly detected: " << e.what() << "\n";
      s.code = 1;
    }
  }
  return s;
}

// Writes DOT text to every output: as it is for DOT names, drawn for pictures. Returns the
// exit code (1 when a picture could not be drawn because Graphviz is missing).
int write_outputs(const Config& c, const std::string& text, std::ostream& report) {
  int code = 0;
  if (c.out.empty() && c.svg.empty() && c.png.empty()) std::cout << text;
  for (const std::string& path : {c.out, c.svg, c.png}) {
    if (path.empty()) continue;
    if (format_of(path) == "dot") {
      io::write_file_atomically(path, text);  // straight into /dev/stdout and the like
      report << "DOT written to " << path << "\n";
      continue;
    }
    try {
      viz::render(text, path);
      report << "picture written to " << path << "\n";
    } catch (const Error& e) {
      if (viz::graphviz_available()) throw;
      std::cerr << "xgrad-graph: " << e.what() << "\n";
      code = 1;
    }
  }
  return code;
}

int run(const Config& c) {
  check(c.batch_size >= 1, "invalid batch size ", c.batch_size, " (must be >= 1)");
  check(c.max_pixels >= 0, "--max-pixels must be >= 0 (0: no size budget), got ", c.max_pixels);
  check_outputs(c);
  // What goes to stdout besides DOT text: on stderr when the DOT text itself goes to stdout.
  const bool dot_on_stdout =
      (c.out.empty() && c.svg.empty() && c.png.empty()) || c.out == "/dev/stdout";
  std::ostream& report = dot_on_stdout ? std::cerr : std::cout;

  if (!c.diff.empty()) {
    check(c.model != "log0" && c.diff != "log0", "--diff compares training steps: log0 has none");
    Step a = record_step(c, c.model, true);
    const viz::GraphRecord ra = viz::record_graph({a.loss}, a.recorder.get(), c.model);
    Step b = record_step(c, c.diff, true);
    const viz::GraphRecord rb = viz::record_graph({b.loss}, b.recorder.get(), c.diff);
    const viz::GraphDiff d = viz::diff(ra, rb);
    report << "xgrad-graph --diff: " << c.model << " → " << c.diff << "\n" << d.to_string();
    return std::max(a.code,
                    std::max(b.code, write_outputs(c, viz::diff_to_dot(ra, rb, d), report)));
  }

  Step s = record_step(c, c.model, c.gradients || c.backward);
  viz::DotOptions opts;
  opts.title = c.title.empty() ? "xgrad-graph: " + s.what : c.title;
  opts.kind = c.backward    ? viz::GraphKind::backward
              : c.gradients ? viz::GraphKind::gradients
                            : viz::GraphKind::forward;
  opts.gradients = s.recorder.get();
  opts.max_nodes = c.max_nodes;
  opts.max_pixels = c.max_pixels;
  opts.clusters = !c.no_clusters;
  opts.legend = !c.no_legend;
  opts.memory = c.memory;
  if (c.memory) report << viz::memory_report(s.loss).to_string(40);
  const std::string text = viz::to_dot({s.loss}, opts);
  return std::max(s.code, write_outputs(c, text, report));
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  po::options_description desc("xgrad-graph options");
  desc.add_options()("help,h", "show this help")(
      "model", po::value(&c.model)->default_value(c.model), ("model: " + models()).c_str())(
      "batch-size", po::value(&c.batch_size)->default_value(c.batch_size), "images in the batch")(
      "steps", po::value(&c.steps)->default_value(c.steps),
      "rnn: time steps to unroll (must divide 784)")(
      "seed", po::value(&c.seed)->default_value(c.seed), "seed of the weights and the batch")(
      "out", po::value(&c.out),
      "write the graph to FILE in the format its name ends with: .dot/.gv (DOT text) or "
      ".svg/.png/.pdf (drawn by Graphviz); other names are refused (default: DOT on stdout)")(
      "svg", po::value(&c.svg), "another output, same rule (older name, kept)")(
      "png", po::value(&c.png), "another output, same rule (older name, kept)")(
      "memory", po::bool_switch(&c.memory),
      "colour ops by the bytes they saved for backward and print the memory report")(
      "diff", po::value(&c.diff),
      "compare the step of --model with the step of this model (same seed): print and draw "
      "what was added, removed or reshaped and which gradients differ most")(
      "max-pixels", po::value(&c.max_pixels)->default_value(c.max_pixels),
      "fold until the picture fits this many pixels on its longer side (0: no budget)")(
      "gradients", po::bool_switch(&c.gradients),
      "run backward and annotate every op and parameter with its gradient")(
      "backward", po::bool_switch(&c.backward),
      "draw the backward graph: the nodes the engine runs, in its order")(
      "anomaly", po::bool_switch(&c.anomaly),
      "run the step under detect_anomaly (a NaN/Inf gradient names the op and its line)")(
      "max-nodes", po::value(&c.max_nodes)->default_value(c.max_nodes),
      "fold repeated structure above this many nodes (0: never)")(
      "no-clusters", po::bool_switch(&c.no_clusters), "do not group nodes by module")(
      "no-legend", po::bool_switch(&c.no_legend), "leave the legend out")(
      "title", po::value(&c.title), "the graph's title");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
    return run(c);
  } catch (const po::error& e) {
    std::cerr << "xgrad-graph: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "xgrad-graph: " << e.what() << "\n";
    return 2;
  }
}
