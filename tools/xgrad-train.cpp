// xgrad-train: trains a model on Fashion-MNIST (or MNIST) from the command line.
//
//   xgrad-train [--model mlp] [--data DIR] [--optim adam] [--lr 1e-3] [--batch-size 64]
//               [--epochs 1] [--max-steps N] [--seed 42] [--threads 1] [--log FILE.csv]
//               [--dot FILE.dot|.gv|.svg|.png|.pdf] [--momentum M] [--nesterov] [--weight-decay W]
//               [--scheduler none|step|cosine|exponential|linear|plateau] [--cosine-epochs N]
//               [--clip-grad-norm X] [--save FILE] [--resume FILE] [--allow-nonfinite]
//               [--watch FILE.csv] [--plot DIR] [--eval-every N]
//
// --save writes a checkpoint (docs/checkpoints.md) after every epoch; --resume continues from
// one — model, optimizer, scheduler, random generator, data loader position and epoch — so
// that a run resumed after epoch k produces, to the last digit, the same losses as one that
// never stopped. --epochs and --max-steps then count from the start of the original run.
//
// The batch size chooses the kind of gradient descent: the dataset size (60000) is batch
// gradient descent, 1 is stochastic, 32 or 64 mini-batch. Bad input prints one line on stderr
// and exits with code 2. A loss that turns NaN or infinite stops the run at that step, before
// the optimizer uses its gradients, with a message naming the epoch and step, and exit code 1
// (--allow-nonfinite keeps training instead).
//
// --watch and --plot record every step's gradient health per module (tools/train/watch.hpp,
// docs/inspecting.md); the progress bar counts the run's steps and estimates the time left.
#include <sys/resource.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <boost/program_options.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

#include "train/distributed.hpp"
#include "train/gpt.hpp"  // --model gpt
#include "train/progress.hpp"
#include "train/watch.hpp"
#include "xgrad/data/dataloader.hpp"
#include "xgrad/data/dataset.hpp"
#include "xgrad/io/atomic_file.hpp"
#include "xgrad/io/checkpoint.hpp"
#include "xgrad/io/safetensors.hpp"
#include "xgrad/nn/clip_grad.hpp"
#include "xgrad/nn/cnn.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/adamw.hpp"
#include "xgrad/optim/lr_scheduler.hpp"
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
  double momentum = 0;  // used only when momentum_set (else 0.9 for --optim momentum, 0 else)
  bool momentum_set = false;
  bool nesterov = false;
  double weight_decay = 0;  // used only when weight_decay_set (else 1e-2 for adamw, 0 else)
  bool weight_decay_set = false;
  std::string scheduler = "none";
  std::int64_t cosine_epochs = 0;  // T_max of --scheduler cosine; 0: --epochs
  double clip_grad_norm = 0;       // 0: no clipping
  std::string save, resume;
  bool allow_nonfinite = false;  // keep training after a NaN/inf loss
  bool distributed = false;      // under mpirun: train/distributed.hpp
  train::WatchConfig watch;      // --watch, --plot, --eval-every

  bool is_sgd() const { return optim == "sgd" || optim == "momentum"; }
  double effective_momentum() const {
    return momentum_set ? momentum : (optim == "momentum" ? 0.9 : 0.0);
  }
  /// T_max of the cosine schedule (0 without one).
  std::int64_t cosine_t_max() const {
    return scheduler != "cosine" ? 0 : (cosine_epochs > 0 ? cosine_epochs : epochs);
  }
  double effective_weight_decay() const {
    return weight_decay_set ? weight_decay : (optim == "adamw" ? 1e-2 : 0.0);
  }
};

// Shortest text that reads back as the same double.
std::string num(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::unique_ptr<optim::Optimizer> make_optimizer(const Config& c, std::vector<Tensor> params) {
  const double mu = c.effective_momentum(), wd = c.effective_weight_decay();
  check(!c.momentum_set || c.is_sgd() || c.optim == "rmsprop",
        "--momentum applies to --optim sgd, momentum and rmsprop, not ", c.optim);
  check(!c.nesterov || c.is_sgd(), "--nesterov applies to --optim sgd and momentum, not ", c.optim);
  check(!c.nesterov || mu > 0, "--nesterov needs a momentum > 0 (--momentum M)");
  if (c.is_sgd())
    return std::make_unique<optim::SGD>(
        params, optim::SGDOptions(c.lr).momentum(mu).nesterov(c.nesterov).weight_decay(wd));
  if (c.optim == "rmsprop")
    return std::make_unique<optim::RMSprop>(
        params, optim::RMSpropOptions(c.lr).momentum(mu).weight_decay(wd));
  if (c.optim == "adam")
    return std::make_unique<optim::Adam>(params, optim::AdamOptions(c.lr).weight_decay(wd));
  if (c.optim == "adamw")
    return std::make_unique<optim::AdamW>(params, optim::AdamWOptions(c.lr).weight_decay(wd));
  fail("unknown optimizer '", c.optim, "' (choose sgd, momentum, rmsprop, adam or adamw)");
}

// The learning-rate schedule of --scheduler, stepped once per epoch (see --help).
std::unique_ptr<optim::Scheduler> make_scheduler(const Config& c, optim::Optimizer& opt) {
  if (c.scheduler == "none") return nullptr;
  if (c.scheduler == "step") return std::make_unique<optim::StepLR>(opt, 1, 0.7);
  if (c.scheduler == "exponential") return std::make_unique<optim::ExponentialLR>(opt, 0.9);
  if (c.scheduler == "cosine")
    return std::make_unique<optim::CosineAnnealingLR>(opt, c.cosine_t_max());
  if (c.scheduler == "linear") return std::make_unique<optim::LinearLR>(opt, 1.0 / 3, 1.0, 5);
  if (c.scheduler == "plateau")
    return std::make_unique<optim::ReduceLROnPlateau>(
        opt, optim::ReduceLROnPlateauOptions{.factor = 0.5, .patience = 1});
  fail("unknown scheduler '", c.scheduler,
       "' (choose none, step, cosine, exponential, linear or plateau)");
}

// What a checkpoint records of the command line, to refuse resuming with other settings.
std::map<std::string, std::string> run_settings(const Config& c, std::int64_t dataset_size) {
  return {{"train.model", c.model},
          {"train.optim", c.optim},
          {"train.lr", num(c.lr)},
          {"train.momentum", num(c.effective_momentum())},
          {"train.nesterov", c.nesterov ? "1" : "0"},
          {"train.weight_decay", num(c.effective_weight_decay())},
          {"train.batch_size", std::to_string(c.batch_size)},
          {"train.seed", std::to_string(c.seed)},
          {"train.scheduler", c.scheduler},
          {"train.cosine_epochs", std::to_string(c.cosine_t_max())},
          {"train.clip_grad_norm", num(c.clip_grad_norm)},
          {"train.dataset_size", std::to_string(dataset_size)}};
}

// The command-line flag a "train.<key>" setting comes from.
std::string flag_of(const std::string& key) {
  if (key == "train.dataset_size") return "a training set size of";
  std::string f = "--" + key.substr(6);
  for (char& ch : f)
    if (ch == '_') ch = '-';
  return f;
}

// The whole number >= 0 a checkpoint's metadata holds under `key` ("train.step"), or an error
// naming the key, the file and the value.
std::int64_t metadata_count(const std::map<std::string, std::string>& meta, const char* key,
                            const std::string& path) {
  const std::string& text = meta.at(key);
  std::int64_t v = -1;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || v < 0)
    fail("--resume: '", path, "' has a malformed '", key, "' in its metadata: '", text,
         "' (expected a whole number >= 0)");
  return v;
}

// Checks that the checkpoint `path` was written by a run with the same settings; returns its
// metadata.
std::map<std::string, std::string> check_resume_settings(const std::string& path, const Config& c,
                                                         std::int64_t dataset_size) {
  const auto meta = io::load_safetensors_metadata(path);
  const auto settings = run_settings(c, dataset_size);
  // The scheduler first: the length of a cosine schedule means nothing under another one.
  std::vector<std::pair<std::string, std::string>> ordered = {
      {"train.scheduler", settings.at("train.scheduler")}};
  for (const auto& kv : settings)
    if (kv.first != "train.scheduler") ordered.push_back(kv);
  for (const auto& [key, value] : ordered) {
    auto it = meta.find(key);
    if (it == meta.end())
      fail("--resume: '", path, "' is not a checkpoint written by xgrad-train --save (no '", key,
           "')");
    if (it->second != value)
      fail("--resume: '", path, "' was written with ", flag_of(key), " ", it->second,
           ", this run has ", value, " (resume with the settings of the run that saved it)");
  }
  for (const char* key : {"train.step", "train.epoch"}) {
    if (!meta.count(key))
      fail("--resume: '", path, "' is not a checkpoint written by xgrad-train --save (no '", key,
           "')");
    metadata_count(meta, key, path);
  }
  return meta;
}

// Mean cross-entropy and accuracy of `model` over a whole dataset, without recording.
// Batches of 64, the default training batch: the blocks a training step freed to the
// allocator's pool serve evaluation again. Batches of 1,000 were no faster and raised the MLP
// epoch's peak memory by 9 MiB (77 against 68 MiB); the printed loss and accuracy were the same.
std::pair<double, double> evaluate(nn::Module& model, const data::Dataset& ds) {
  no_grad guard;
  data::DataLoader loader(ds, {.batch_size = 64});
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

// A training loss that is NaN or infinite: exit code 1 (a failed run, not bad input).
struct NonFiniteLoss : std::runtime_error {
  using std::runtime_error::runtime_error;
};

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

int run(const Config& c, train::Distributed& dist) {
  check(c.model == "mlp" || c.model == "mlp-bn" || c.model == "cnn", "unknown model '", c.model,
        "' (choose mlp, mlp-bn, cnn or gpt)");
  check(c.lr >= 0 && std::isfinite(c.lr), "invalid learning rate ", c.lr, " (must be >= 0)");
  check(c.batch_size >= 1, "invalid batch size ", c.batch_size, " (must be >= 1)");
  check(c.epochs >= 1, "invalid number of epochs ", c.epochs, " (must be >= 1)");
  check(c.threads >= 1, "invalid number of threads ", c.threads, " (must be >= 1)");
  check(c.cosine_epochs >= 0, "invalid --cosine-epochs ", c.cosine_epochs,
        " (must be >= 1; 0 means --epochs)");
  check(c.cosine_epochs == 0 || c.scheduler == "cosine",
        "--cosine-epochs applies to --scheduler cosine only");
  check(!c.momentum_set || (c.momentum >= 0 && std::isfinite(c.momentum)), "invalid momentum ",
        c.momentum, " (must be >= 0)");
  check(!c.weight_decay_set || (c.weight_decay >= 0 && std::isfinite(c.weight_decay)),
        "invalid weight decay ", c.weight_decay, " (must be >= 0)");
  check(c.clip_grad_norm >= 0 && std::isfinite(c.clip_grad_norm), "invalid --clip-grad-norm ",
        c.clip_grad_norm, " (must be > 0; 0 turns clipping off)");
  check(c.max_steps == -1 || c.max_steps >= 1, "invalid --max-steps ", c.max_steps,
        " (must be >= 1, or -1 for no limit)");
  for (const auto& [flag, path] :
       {std::pair<const char*, const std::string&>{"--log", c.log}, {"--dot", c.dot}}) {
    if (path.empty()) continue;  // fail now rather than after training
    const std::filesystem::path folder = std::filesystem::absolute(path).parent_path();
    check(std::filesystem::is_directory(folder), flag, ": the folder '", folder.string(), "' of '",
          path, "' does not exist");
  }
  if (!c.dot.empty()) {  // write_graph would write DOT text into step.jpg and say nothing
    std::string ext = std::filesystem::path(c.dot).extension().string();
    for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    check(ext == ".dot" || ext == ".gv" || ext == ".svg" || ext == ".png" || ext == ".pdf",
          "--dot: cannot tell the format of '", c.dot, "' ",
          ext.empty() ? std::string("(no extension)") : "from its extension '" + ext + "'",
          ": name it .dot or .gv (DOT text), or .svg, .png or .pdf (drawn by Graphviz)");
  }
  train::check_watch_config(c.watch);
  if (!c.save.empty()) {  // fail now rather than after the first epoch
    const std::filesystem::path folder = std::filesystem::absolute(c.save).parent_path();
    check(std::filesystem::is_directory(folder), "--save: the folder '", folder.string(), "' of '",
          c.save, "' does not exist");
  }
  set_num_threads(c.threads);
  // Adam's moments of dead units decay into subnormals, where each float op costs ~100 cycles.
  set_flush_denormal(true);
  manual_seed(c.seed);

  data::MnistDataset train(c.data, data::Split::train);
  data::MnistDataset test(c.data, data::Split::test);
  // Refused here whatever the data layer accepts: an empty epoch would "train" nothing and
  // report a mean loss of 0/0.
  check(train.size() > 0, "--data: the training set in '", c.data,
        "' is empty (0 images): nothing to train on");
  std::unique_ptr<nn::Module> model_ptr;
  if (c.model == "cnn") {
    check(train.rows() == 28 && train.cols() == 28, "the cnn model needs 28x28 images, got ",
          train.rows(), "x", train.cols());
    model_ptr = std::make_unique<nn::CNN>();
  } else {
    model_ptr = std::make_unique<nn::MLP>(
        std::vector<std::int64_t>{train.rows() * train.cols(), 256, 128, 10}, nn::LinearOptions{},
        /*batch_norm=*/c.model == "mlp-bn");
  }
  nn::Module& model = *model_ptr;
  const std::vector<Tensor> params = model.parameters();
  dist.wrap(model);
  auto opt = make_optimizer(c, params);
  auto sched = make_scheduler(c, *opt);
  data::DataLoader loader(dist.train_set(train, c.seed),
                          {.batch_size = c.batch_size, .shuffle = !dist.active(), .seed = c.seed});

  // Continue a run: everything --save wrote comes back, including the random generator.
  std::int64_t step = 0;
  if (!c.resume.empty()) {
    const auto meta = check_resume_settings(c.resume, c, train.size());
    dist.check_resume(c.resume);
    io::load_checkpoint(c.resume, model, *opt, {.scheduler = sched.get(), .loader = &loader});
    step = metadata_count(meta, "train.step", c.resume);
  }
  const std::int64_t first_epoch = loader.state().epoch + 1;

  const bool tty = ::isatty(STDERR_FILENO) != 0 && dist.is_main();
  train::Watch watch(c.watch, model,
                     c.model + ", " + c.optim + " lr " + num(c.lr) + ", batch size " +
                         std::to_string(c.batch_size) + ": ",
                     tty);
  const std::int64_t total_steps = train::total_steps(c.epochs, loader.size(), c.max_steps);
  std::ostringstream extras;
  if (c.effective_momentum() != 0) extras << ", momentum " << c.effective_momentum();
  if (c.nesterov) extras << ", nesterov";
  if (c.weight_decay_set) extras << ", weight decay " << c.weight_decay;
  if (sched) extras << ", scheduler " << c.scheduler;
  if (c.clip_grad_norm > 0) extras << ", clip grad norm " << c.clip_grad_norm;
  std::cout << "xgrad-train: model " << c.model << ", optimizer " << c.optim << ", lr " << c.lr
            << extras.str() << ", batch size " << c.batch_size << ", " << c.epochs
            << " epoch(s), seed " << c.seed << ", " << c.threads << " thread(s)\n"
            << "data: " << train.size() << " training and " << test.size() << " test images from "
            << c.data << "\n"
            << dist.describe(c.batch_size) << std::flush;
  if (!c.resume.empty())
    std::cout << "resumed from " << c.resume << ": epoch " << first_epoch << ", batch "
              << loader.state().batch << ", step " << step << std::endl;

  std::ostringstream log;
  log << "step,epoch,loss,lr\n";
  const std::int64_t first_step = step;
  double train_seconds = 0;
  std::int64_t samples = 0;
  bool stop = c.max_steps > 0 && step >= c.max_steps;
  bool dot_written = false;
  if (first_epoch > c.epochs || stop)
    std::cout << "nothing to train: the checkpoint is at epoch " << first_epoch - 1 << ", step "
              << step << " (--epochs and --max-steps count from the start of the run)" << std::endl;
  const auto t_start = Clock::now();
  for (std::int64_t epoch = first_epoch; epoch <= c.epochs && !stop; ++epoch) {
    model.train();
    double loss_sum = 0;
    // A resumed run may start in the middle of an epoch.
    const std::int64_t first_batch = loader.state().batch;
    std::int64_t loss_count = 0, batch_index = first_batch;
    const auto t_epoch = Clock::now();
    auto t_report = t_epoch;
    dist.set_epoch(loader.state().epoch);
    for (auto& batch : loader) {
      // The first step's graph (--dot) shows the batch too: images and labels.
      const bool draw = step == 0 && !c.dot.empty();
      std::optional<viz::record_data_inputs> record_inputs;
      if (draw) {
        record_inputs.emplace();
        batch.inputs.set_name("images");
        batch.labels.set_name("labels");
      }
      Tensor logits = model(batch.inputs);
      Tensor loss = cross_entropy(logits, batch.labels);
      record_inputs.reset();
      if (draw) {
        loss.set_name("loss");
        viz::write_graph(c.dot, {loss},
                         {.title = "xgrad-train: one training step of the " + c.model});
        dot_written = true;
      }
      const double l = dist.mean(loss.item());  // the whole step's loss
      if (!std::isfinite(l) && !c.allow_nonfinite) {
        // Stop before the optimizer spreads the NaN/inf into every parameter. Step numbers are
        // 1-based, as in the --log file.
        if (tty) std::fprintf(stderr, "\n");
        if (!c.log.empty()) {
          log << step + 1 << "," << epoch << "," << l << "," << opt->param_groups()[0].lr() << "\n";
          io::write_file_atomically(c.log, log.str());
        }
        watch.finish();  // what led to it
        std::ostringstream msg;
        msg << "the training loss is " << (std::isnan(l) ? "nan" : (l > 0 ? "inf" : "-inf"))
            << " at epoch " << epoch << ", step " << step + 1 << " (batch " << batch_index + 1
            << " of " << loader.size()
            << "): stopping; lower --lr or use --clip-grad-norm, or pass --allow-nonfinite to "
               "keep training";
        throw NonFiniteLoss(msg.str());
      }
      opt->zero_grad();
      loss.backward();
      watch.after_backward(step + 1, l);
      if (c.clip_grad_norm > 0) nn::clip_grad_norm_(params, c.clip_grad_norm);
      opt->step();
      watch.after_step(opt->param_groups()[0].lr());
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
        std::fprintf(stderr, "\r%s ",
                     train::progress_line(
                         epoch, c.epochs, step, total_steps, loss_sum / loss_count,
                         static_cast<double>((batch_index - first_batch) * c.batch_size) /
                             std::max(secs, 1e-9),
                         step - first_step, std::chrono::duration<double>(now - t_start).count())
                         .c_str());
      }
      if (watch.eval_due(step)) {  // --eval-every: a test loss between epoch ends
        model.eval();
        watch.test_point(step, evaluate(model, test).first);
        model.train();
      }
      if (c.max_steps > 0 && step >= c.max_steps) {
        stop = true;
        break;
      }
    }
    train_seconds += std::chrono::duration<double>(Clock::now() - t_epoch).count();
    if (tty) std::fprintf(stderr, "\n");
    model.eval();
    auto [test_loss, test_acc] =
        dist.evaluate(test, [&](const data::Dataset& d) { return evaluate(model, d); });
    std::printf("epoch %lld  train loss %.4f  test loss %.4f  test accuracy %.4f\n",
                static_cast<long long>(epoch), loss_sum / std::max<std::int64_t>(loss_count, 1),
                test_loss, test_acc);
    std::fflush(stdout);
    watch.test_point(step, test_loss);
    // Schedules step once per completed epoch (not after a --max-steps stop mid-epoch, so that
    // a run resumed from there steps at the epoch's real end).
    if (sched && batch_index == loader.size()) {
      if (auto* plateau = dynamic_cast<optim::ReduceLROnPlateau*>(sched.get()))
        plateau->step(test_loss);
      else
        static_cast<optim::LRScheduler&>(*sched).step();
    }
    if (!c.save.empty()) {
      auto meta = run_settings(c, train.size());
      meta["train.step"] = std::to_string(step);
      meta["train.epoch"] = std::to_string(epoch);
      dist.annotate(meta);
      io::save_checkpoint(c.save, model, *opt,
                          {.scheduler = sched.get(), .loader = &loader, .metadata = meta});
    }
    if (!c.log.empty()) io::write_file_atomically(c.log, log.str());
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t_start).count();
  watch.finish();
  std::printf(
      "done: %lld steps, wall time %.2f s, %.0f samples/s (training), peak memory %.1f MiB\n",
      static_cast<long long>(step - first_step), wall,
      static_cast<double>(samples) / std::max(train_seconds, 1e-9), peak_rss_mib());
  if (!c.log.empty()) std::printf("loss curve written to %s\n", c.log.c_str());
  if (!c.save.empty() && step > first_step)
    std::printf("checkpoint written to %s\n", c.save.c_str());
  if (dot_written) std::printf("graph of one training step written to %s\n", c.dot.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
#if defined(__GLIBC__)
  // Fixed malloc thresholds: tensors up to 32 MiB come from the heap, and freed memory is kept
  // for the next step. glibc's dynamic thresholds otherwise depend on what happened to be
  // freed while the data loaded; with the IDX reader inflating straight into its final buffer
  // they stayed at ~260 KiB, and each epoch gave ~87 MiB back to the kernel and faulted it in
  // again (49 heap trims, ~22k page faults: 5 % of the MLP's samples/s). Set in the program,
  // not the library: mallopt is process-wide. A buffer cache in Storage would make it moot.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
  Config c;
  po::options_description desc("xgrad-train options");
  desc.add_options()("help,h", "show this help")(
      "model", po::value(&c.model)->default_value(c.model),
      "model: mlp (784-256-128-10, ReLU) | mlp-bn (the mlp with BatchNorm1d before each ReLU) | "
      "cnn (conv 1→16, pool, conv 16→32, pool, linear 1568→10) | gpt (a character-level "
      "transformer on a text corpus, default /usr/share/games/fortunes: docs/transformer.md)")(
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
      "threads", po::value(&c.threads)->default_value(c.threads),
      "threads for BLAS and for the batch pool of conv2d and pooling")(
      "log", po::value(&c.log), "write step,epoch,loss,lr to this CSV file")(
      "dot", po::value(&c.dot),
      "write the graph of the first training step to this file: DOT text when it ends in "
      ".dot or .gv, drawn by Graphviz when it ends in .svg, .png or .pdf (other names are "
      "refused)")(
      "out", po::value(&c.dot),
      "the same as --dot: --out FILE is the name xgrad-graph and xgrad-descent use too")(
      "momentum", po::value(&c.momentum),
      "momentum of sgd (default 0; 0.9 for --optim momentum) and of rmsprop (default 0)")(
      "nesterov", po::bool_switch(&c.nesterov), "Nesterov momentum (sgd and momentum)")(
      "weight-decay", po::value(&c.weight_decay),
      "weight decay (L2; decoupled for adamw). Default 0, and 0.01 for adamw")(
      "scheduler", po::value(&c.scheduler)->default_value(c.scheduler),
      "learning-rate schedule, stepped after each epoch: none | step (x0.7 every epoch) | "
      "exponential (x0.9 every epoch) | cosine (down to 0 over --cosine-epochs) | linear "
      "(warm-up from lr/3 to lr over 5 epochs) | plateau (x0.5 after 2 epochs in a row without "
      "a lower test loss)")(
      "cosine-epochs", po::value(&c.cosine_epochs)->default_value(c.cosine_epochs),
      "length (T_max) of --scheduler cosine in epochs; 0: --epochs. Give it when a run is "
      "split into parts with --save/--resume, so that every part plans the same schedule")(
      "clip-grad-norm", po::value(&c.clip_grad_norm)->default_value(c.clip_grad_norm),
      "clip the gradients' total L2 norm to this before each step (0: off)")(
      "save", po::value(&c.save),
      "write a checkpoint (safetensors) to this file after every epoch, atomically")(
      "resume", po::value(&c.resume),
      "continue the run that wrote this checkpoint (same settings; --epochs and --max-steps "
      "count from that run's start)")(
      "allow-nonfinite", po::bool_switch(&c.allow_nonfinite),
      "keep training when the loss turns NaN or infinite (by default the run stops at that "
      "step with exit code 1)")(
      "distributed", po::bool_switch(&c.distributed),
      "data-parallel training under mpirun -np N: each process trains on its shard, gradients "
      "are averaged (effective batch N x --batch-size); only rank 0 prints and saves "
      "(docs/distributed.md)");
  train::add_watch_options(desc, c.watch);
  xgrad::train::add_gpt_options(desc);
  try {
    po::variables_map vm;
    // No positional arguments: a stray word is an error, not silently ignored.
    po::store(po::command_line_parser(argc, argv)
                  .options(desc)
                  .positional(po::positional_options_description())
                  .run(),
              vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
    c.momentum_set = vm.count("momentum") > 0;
    c.weight_decay_set = vm.count("weight-decay") > 0;
    if (c.model == "gpt") return xgrad::train::run_gpt(vm);
    train::Distributed dist(c.distributed, argc, argv);
    if (!dist.is_main()) c.log.clear(), c.save.clear(), c.dot.clear();  // rank 0 writes
    return run(c, dist);
  } catch (const NonFiniteLoss& e) {
    std::cerr << "xgrad-train: " << train::rank_prefix() << e.what() << "\n";
    return train::exit_code(1);
  } catch (const po::error& e) {
    std::cerr << "xgrad-train: " << e.what() << " (see --help)\n";
    return train::exit_code(2);
  } catch (const std::exception& e) {
    std::cerr << "xgrad-train: " << train::rank_prefix() << e.what() << "\n";
    return train::exit_code(2);
  }
}
