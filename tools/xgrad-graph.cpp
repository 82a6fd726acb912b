// xgrad-graph: draws the graph of one training step of a model — DOT text and, when Graphviz is
// installed, SVG/PNG — optionally with the gradients of the step or as the backward graph.
//
//   xgrad-graph [--model mlp|cnn|lstm|rnn|log0] [--batch-size 64] [--steps 28] [--seed 0]
//               [--out FILE.dot] [--svg FILE.svg] [--png FILE.png] [--gradients] [--backward]
//               [--anomaly] [--max-nodes 500] [--no-clusters] [--no-legend] [--title TEXT]
//
// The step runs on a random batch shaped like Fashion-MNIST's (the graph does not depend on
// the values): images [N, 784], labels [N]. cnn and lstm are there when nn::CNN
// (xgrad/nn/cnn.hpp) and nn::LSTM (xgrad/nn/rnn.hpp) are. rnn is an Elman RNN unrolled by hand
// over --steps steps (large graphs fold); log0 is loss = log(x − x).sum(), a deliberate
// NaN/Inf to show red gradients and, with --anomaly, anomaly detection naming the op and its
// line. Bad input prints one line on stderr and exits with code 2; a picture that cannot be
// rendered (no Graphviz) exits with code 1 after writing the DOT file.
#include <boost/program_options.hpp>
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
#include "xgrad/viz/dot.hpp"
#include "xgrad/viz/gradients.hpp"
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
  std::string out, svg, png, title;
  bool gradients = false, backward = false, anomaly = false;
  bool no_clusters = false, no_legend = false;
  std::size_t max_nodes = 500;
};

std::string models() {
  std::string m = "mlp";
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

// Fails before any work when an output cannot be written: its folder is missing, or a
// picture's name does not say its format.
void check_outputs(const Config& c) {
  for (const auto& [flag, path] : {std::pair<const char*, const std::string&>{"--out", c.out},
                                   {"--svg", c.svg},
                                   {"--png", c.png}}) {
    if (path.empty()) continue;
    const std::filesystem::path folder = std::filesystem::absolute(path).parent_path();
    check(std::filesystem::is_directory(folder), flag, ": the folder '", folder.string(), "' of '",
          path, "' does not exist");
    if (std::string_view(flag) == "--out") continue;
    const std::string ext = std::filesystem::path(path).extension().string();
    check(ext == ".svg" || ext == ".png" || ext == ".pdf", flag, ": cannot tell the picture ",
          "format of '", path, "': name it .svg, .png or .pdf (--out writes DOT text)");
  }
}

int run(const Config& c) {
  check(c.batch_size >= 1, "invalid batch size ", c.batch_size, " (must be >= 1)");
  check_outputs(c);
  manual_seed(c.seed);
  std::optional<autograd::detect_anomaly> anomaly;
  if (c.anomaly) anomaly.emplace();

  Tensor loss;
  std::shared_ptr<nn::Module> model;
  std::string what;
  {
    viz::record_data_inputs inputs;  // draw the images and labels too
    if (c.model == "log0") {
      Tensor x = randn({c.batch_size, 4}).requires_grad_();
      loss = log_of_zero(x);
      what = "loss = log(x - x).sum()";
    } else {
      model = make_model(c);
      Tensor images = randn({c.batch_size, 784}).set_name("images");
      std::vector<std::int64_t> classes(static_cast<std::size_t>(c.batch_size));
      for (std::size_t i = 0; i < classes.size(); ++i)
        classes[i] = static_cast<std::int64_t>(i % 10);
      Tensor labels = from_data(classes.data(), {c.batch_size}).set_name("labels");
      loss = cross_entropy((*model)(images), labels);
      what = "one training step of the " + c.model + " (" + model->type_name() + ")";
    }
  }
  loss.set_name("loss");

  viz::DotOptions opts;
  opts.title = c.title.empty() ? "xgrad-graph: " + what : c.title;
  opts.kind = c.backward    ? viz::GraphKind::backward
              : c.gradients ? viz::GraphKind::gradients
                            : viz::GraphKind::forward;
  opts.max_nodes = c.max_nodes;
  opts.clusters = !c.no_clusters;
  opts.legend = !c.no_legend;
  std::unique_ptr<viz::GradientRecorder> recorder;
  int code = 0;
  if (c.gradients || c.backward || c.anomaly) {
    if (c.gradients || c.backward) {
      recorder = std::make_unique<viz::GradientRecorder>(std::vector<Tensor>{loss});
      opts.gradients = recorder.get();
    }
    try {
      loss.backward();
    } catch (const Error& e) {
      if (!c.anomaly) throw;
      // What anomaly detection is for: report it, and still draw what was recorded.
      std::cerr << "xgrad-graph: anomaly detected: " << e.what() << "\n";
      code = 1;
    }
  }

  const std::string text = viz::to_dot({loss}, opts);
  if (!c.out.empty()) {
    io::write_file_atomically(c.out, text);  // straight into /dev/stdout and the like
    std::cout << "DOT written to " << c.out << "\n";
  } else if (c.svg.empty() && c.png.empty()) {
    std::cout << text;
  }
  for (const std::string& picture : {c.svg, c.png}) {
    if (picture.empty()) continue;
    try {
      viz::render(text, picture);
      std::cout << "picture written to " << picture << "\n";
    } catch (const Error& e) {
      if (viz::graphviz_available()) throw;
      std::cerr << "xgrad-graph: " << e.what() << "\n";
      code = 1;
    }
  }
  return code;
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
      "out", po::value(&c.out), "write the DOT text to this file (default: stdout)")(
      "svg", po::value(&c.svg),
      "draw the graph with Graphviz into this file, in the format its name ends with: .svg, "
      ".png or .pdf")("png", po::value(&c.png),
                      "a second picture, same rule (e.g. step.png beside --svg step.svg)")(
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
