// xgrad-train: trains a model on Fashion-MNIST (or MNIST) from the command line.
//
//   xgrad-train [--model mlp] [--data DIR] [--optim adam] [--lr 1e-3] [--batch-size 64]
//               [--epochs 1] [--max-steps N] [--seed 42] [--threads 1] [--log FILE.csv]
//               [--dot FILE.dot]
//
// The batch size chooses the kind of gradient descent: the dataset size (60000) is batch
// gradient descent, 1 is stochastic, 32 or 64 mini-batch. Bad input prints one line on stderr
// and exits with code 2.
#include <sys/resource.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "xgrad/data/dataloader.hpp"
#include "xgrad/data/dataset.hpp"
#include "xgrad/io/atomic_file.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/adamw.hpp"
#include "xgrad/optim/rmsprop.hpp"
#include "xgrad/optim/sgd.hpp"
#include "xgrad/viz/dot.hpp"
#include "xgrad/xgrad.hpp"

namespace po = boost::program_options;
using namespace xgrad;
using Clock = std::chrono::steady_clock;

namespace {

struct Config {
  std::string model = "mlp";
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string optim = "adam";
  double lr = 1e-3;
  std::int64_t batch_size = 64;
  std::int64_t epochs = 1;
  std::int64_t max_steps = -1;
  std::uint64_t seed = 42;
  int threads = 1;
  std::string log, dot;
};

std::unique_ptr<optim::Optimizer> make_optimizer(const Config& c, std::vector<Tensor> params) {
  if (c.optim == "sgd") return std::make_unique<optim::SGD>(params, optim::SGDOptions(c.lr));
  if (c.optim == "momentum")
    return std::make_unique<optim::SGD>(params, optim::SGDOptions(c.lr).momentum(0.9));
  if (c.optim == "rmsprop")
    return std::make_unique<optim::RMSprop>(params, optim::RMSpropOptions(c.lr));
  if (c.optim == "adam") return std::make_unique<optim::Adam>(params, optim::AdamOptions(c.lr));
  if (c.optim == "adamw") return std::make_unique<optim::AdamW>(params, optim::AdamWOptions(c.lr));
  fail("unknown optimizer '", c.optim, "' (choose sgd, momentum, rmsprop, adam or adamw)");
}

// Mean cross-entropy and accuracy of `model` over a whole dataset, without recording.
std::pair<double, double> evaluate(nn::Module& model, const data::Dataset& ds) {
  no_grad guard;
  data::DataLoader loader(ds, {.batch_size = 1000});
  double loss = 0;
  std::int64_t correct = 0;
  for (auto& batch : loader) {
    Tensor logits = model(batch.inputs);
    loss += cross_entropy(logits, batch.labels, Reduction::sum).item();
    Tensor pred = argmax(logits, 1);
    const std::int64_t* p = pred.data_ptr<std::int64_t>();
    const std::int64_t* l = batch.labels.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < pred.numel(); ++i) correct += p[i] == l[i];
  }
  const double n = static_cast<double>(ds.size());
  return {loss / n, static_cast<double>(correct) / n};
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

std::string progress_bar(double frac, int width = 30) {
  const int full = static_cast<int>(frac * width);
  return "[" + std::string(static_cast<std::size_t>(full), '#') +
         std::string(static_cast<std::size_t>(width - full), '.') + "]";
}

int run(const Config& c) {
  check(c.model == "mlp", "unknown model '", c.model, "' (choose mlp)");
  check(c.lr >= 0 && std::isfinite(c.lr), "invalid learning rate ", c.lr, " (must be >= 0)");
  check(c.batch_size >= 1, "invalid batch size ", c.batch_size, " (must be >= 1)");
  check(c.epochs >= 1, "invalid number of epochs ", c.epochs, " (must be >= 1)");
  check(c.threads >= 1, "invalid number of threads ", c.threads, " (must be >= 1)");
  set_num_threads(c.threads);
  // Adam's moments of dead units decay into subnormals, where each float op costs ~100 cycles.
  set_flush_denormal(true);
  manual_seed(c.seed);

  data::MnistDataset train(c.data, data::Split::train);
  data::MnistDataset test(c.data, data::Split::test);
  nn::MLP model({train.rows() * train.cols(), 256, 128, 10});
  auto opt = make_optimizer(c, model.parameters());
  data::DataLoader loader(train, {.batch_size = c.batch_size, .shuffle = true, .seed = c.seed});

  const bool tty = ::isatty(STDERR_FILENO) != 0;
  std::cout << "xgrad-train: model " << c.model << ", optimizer " << c.optim << ", lr " << c.lr
            << ", batch size " << c.batch_size << ", " << c.epochs << " epoch(s), seed " << c.seed
            << ", " << c.threads << " thread(s)\n"
            << "data: " << train.size() << " training and " << test.size() << " test images from "
            << c.data << std::endl;

  std::ostringstream log;
  log << "step,epoch,loss,lr\n";
  std::int64_t step = 0;
  double train_seconds = 0;
  std::int64_t samples = 0;
  bool stop = false;
  const auto t_start = Clock::now();
  for (std::int64_t epoch = 1; epoch <= c.epochs && !stop; ++epoch) {
    model.train();
    double loss_sum = 0;
    std::int64_t loss_count = 0, batch_index = 0;
    const auto t_epoch = Clock::now();
    auto t_report = t_epoch;
    for (auto& batch : loader) {
      Tensor logits = model(batch.inputs);
      Tensor loss = cross_entropy(logits, batch.labels);
      if (step == 0 && !c.dot.empty()) {
        loss.set_name("loss");
        viz::write_dot(c.dot, {loss}, {.title = "xgrad-train: one training step of the MLP"});
      }
      opt->zero_grad();
      loss.backward();
      opt->step();
      const double l = loss.item();
      loss_sum += l;
      ++loss_count;
      ++step;
      ++batch_index;
      samples += batch.labels.numel();
      if (!c.log.empty())
        log << step << "," << epoch << "," << l << "," << opt->param_groups()[0].lr() << "\n";
      const auto now = Clock::now();
      const bool last = batch_index == loader.size() || (c.max_steps > 0 && step >= c.max_steps);
      if (tty && (now - t_report > std::chrono::milliseconds(100) || last)) {
        t_report = now;
        const double secs = std::chrono::duration<double>(now - t_epoch).count();
        std::fprintf(stderr, "\repoch %lld %s %lld/%lld  loss %.4f  %.0f samples/s ",
                     static_cast<long long>(epoch),
                     progress_bar(static_cast<double>(batch_index) / loader.size()).c_str(),
                     static_cast<long long>(batch_index), static_cast<long long>(loader.size()),
                     loss_sum / loss_count,
                     static_cast<double>(batch_index * c.batch_size) / std::max(secs, 1e-9));
      }
      if (c.max_steps > 0 && step >= c.max_steps) {
        stop = true;
        break;
      }
    }
    train_seconds += std::chrono::duration<double>(Clock::now() - t_epoch).count();
    if (tty) std::fprintf(stderr, "\n");
    model.eval();
    auto [test_loss, test_acc] = evaluate(model, test);
    std::printf("epoch %lld  train loss %.4f  test loss %.4f  test accuracy %.4f\n",
                static_cast<long long>(epoch), loss_sum / std::max<std::int64_t>(loss_count, 1),
                test_loss, test_acc);
    std::fflush(stdout);
    if (!c.log.empty()) io::write_file_atomically(c.log, log.str());
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t_start).count();
  std::printf(
      "done: %lld steps, wall time %.2f s, %.0f samples/s (training), peak memory %.1f MiB\n",
      static_cast<long long>(step), wall,
      static_cast<double>(samples) / std::max(train_seconds, 1e-9), peak_rss_mib());
  if (!c.log.empty()) std::printf("loss curve written to %s\n", c.log.c_str());
  if (!c.dot.empty()) std::printf("graph of one training step written to %s\n", c.dot.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  po::options_description desc("xgrad-train options");
  desc.add_options()("help,h", "show this help")(
      "model", po::value(&c.model)->default_value(c.model), "model: mlp (784-256-128-10, ReLU)")(
      "data", po::value(&c.data)->default_value(c.data), "folder with the IDX files")(
      "optim", po::value(&c.optim)->default_value(c.optim),
      "optimizer: sgd | momentum (SGD, momentum 0.9) | rmsprop | adam | adamw")(
      "lr", po::value(&c.lr)->default_value(c.lr), "learning rate")(
      "batch-size", po::value(&c.batch_size)->default_value(c.batch_size),
      "samples per step: 60000 = batch GD, 1 = stochastic, 32/64 = mini-batch")(
      "epochs", po::value(&c.epochs)->default_value(c.epochs), "passes over the training set")(
      "max-steps", po::value(&c.max_steps)->default_value(c.max_steps),
      "stop after this many steps (-1: no limit)")(
      "seed", po::value(&c.seed)->default_value(c.seed), "seed of initialisation and shuffling")(
      "threads", po::value(&c.threads)->default_value(c.threads), "BLAS threads")(
      "log", po::value(&c.log), "write step,epoch,loss,lr to this CSV file")(
      "dot", po::value(&c.dot), "write the DOT graph of one training step to this file");
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
    std::cerr << "xgrad-train: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "xgrad-train: " << e.what() << "\n";
    return 2;
  }
}
