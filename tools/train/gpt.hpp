// xgrad-train --model gpt: trains the character-level GPT (nn::GPT) on a text corpus (by
// default Debian's fortunes), reports the validation loss in nats and bits per character, and
// samples text from the model (--sample N) after training or from a checkpoint (--resume).
// Included by tools/xgrad-train.cpp, which hands over its parsed options (run_gpt); the
// options only this model has are registered by add_gpt_options.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "xgrad/data/text.hpp"
#include "xgrad/io/atomic_file.hpp"
#include "xgrad/io/checkpoint.hpp"
#include "xgrad/io/safetensors.hpp"
#include "xgrad/nn/clip_grad.hpp"
#include "xgrad/nn/gpt.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/adamw.hpp"
#include "xgrad/optim/sgd.hpp"
#include "xgrad/runtime.hpp"
#include "xgrad/viz/dot.hpp"
#include "xgrad/xgrad.hpp"

namespace xgrad::train {

/// The options of --model gpt that the other models do not have, with their defaults.
struct GptOptions {
  std::int64_t n_layer = 4, n_head = 4, n_embd = 128, block_size = 64;
  std::int64_t sample = 0;
  double temperature = 1.0;
  std::int64_t top_k = 0;
  std::int64_t eval_interval = 500;
  std::int64_t eval_blocks = 1024;
};

inline GptOptions& gpt_options() {
  static GptOptions o;
  return o;
}

/// Registers --sample, --temperature, --top-k, --n-layer, --n-head, --n-embd, --block-size,
/// --eval-interval and --eval-blocks.
inline void add_gpt_options(boost::program_options::options_description& desc) {
  namespace po = boost::program_options;
  GptOptions& o = gpt_options();
  desc.add_options()("sample", po::value(&o.sample)->default_value(o.sample),
                     "--model gpt: print this many generated characters after training (or "
                     "from --resume ckpt)")("temperature",
                                            po::value(&o.temperature)->default_value(o.temperature),
                                            "--model gpt: sampling temperature (> 0)")(
      "top-k", po::value(&o.top_k)->default_value(o.top_k),
      "--model gpt: sample among the k likeliest characters only (0: all)")(
      "n-layer", po::value(&o.n_layer)->default_value(o.n_layer), "--model gpt: blocks")(
      "n-head", po::value(&o.n_head)->default_value(o.n_head), "--model gpt: attention heads")(
      "n-embd", po::value(&o.n_embd)->default_value(o.n_embd), "--model gpt: width")(
      "block-size", po::value(&o.block_size)->default_value(o.block_size),
      "--model gpt: context length in characters")(
      "eval-interval", po::value(&o.eval_interval)->default_value(o.eval_interval),
      "--model gpt: report the validation loss (and --save) every this many steps")(
      "eval-blocks", po::value(&o.eval_blocks)->default_value(o.eval_blocks),
      "--model gpt: validation blocks (evenly spaced over the validation text) per evaluation");
}

namespace gpt_detail {

// The value of --name: the user's, else this model's default.
template <class T>
T opt(const boost::program_options::variables_map& vm, const char* name, T fallback) {
  return vm.count(name) && !vm[name].defaulted() ? vm[name].as<T>() : fallback;
}

inline std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Evenly spaced block offsets over a text of n tokens (the same as tools/torch_gpt.py's).
inline std::vector<std::int64_t> eval_offsets(std::int64_t n, std::int64_t block,
                                              std::int64_t count) {
  const std::int64_t last = n - block - 1;
  count = std::min(count, last + 1);
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < count; ++i) out.push_back(count == 1 ? 0 : i * last / (count - 1));
  return out;
}

// Mean cross-entropy (nats per character) over the given validation blocks, without recording.
inline double evaluate(nn::GPT& model, const data::TextDataset& text,
                       const std::vector<std::int64_t>& offsets, std::int64_t block) {
  no_grad guard;
  model.eval();
  double total = 0;
  std::int64_t count = 0;
  for (std::size_t i = 0; i < offsets.size(); i += 64) {
    const std::size_t n = std::min<std::size_t>(64, offsets.size() - i);
    auto b = text.batch_at(data::Split::test, std::span(offsets.data() + i, n), block);
    total += model.loss(b.inputs, b.labels).item() * static_cast<double>(b.labels.numel());
    count += b.labels.numel();
  }
  model.train();
  return total / static_cast<double>(count);
}

inline double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

}  // namespace gpt_detail

/// Runs --model gpt with the parsed command line. Defaults that differ from the other models':
/// --data /usr/share/games/fortunes, --optim adamw (betas 0.9, 0.99), --weight-decay 0.1,
/// --batch-size 32, --clip-grad-norm 1, --max-steps 2000. Returns the exit code; throws
/// xgrad::Error for bad input (exit code 2 in main).
inline int run_gpt(const boost::program_options::variables_map& vm) {
  using gpt_detail::opt;
  using Clock = std::chrono::steady_clock;
  const GptOptions& g = gpt_options();
  const std::string data_path = opt<std::string>(vm, "data", data::kDefaultTextCorpus);
  const std::string optim_name = opt<std::string>(vm, "optim", "adamw");
  const double lr = opt(vm, "lr", 1e-3);
  const double weight_decay = opt(vm, "weight-decay", optim_name == "adamw" ? 0.1 : 0.0);
  const std::int64_t batch = opt<std::int64_t>(vm, "batch-size", 32);
  const double clip = opt(vm, "clip-grad-norm", 1.0);
  std::int64_t max_steps = opt<std::int64_t>(vm, "max-steps", 2000);
  const auto seed = vm["seed"].as<std::uint64_t>();
  const int threads = vm["threads"].as<int>();
  const std::string log = vm.count("log") ? vm["log"].as<std::string>() : "";
  const std::string dot = vm.count("dot") ? vm["dot"].as<std::string>() : "";
  const std::string save = vm.count("save") ? vm["save"].as<std::string>() : "";
  const std::string resume = vm.count("resume") ? vm["resume"].as<std::string>() : "";
  const bool allow_nonfinite = vm["allow-nonfinite"].as<bool>();
  for (const char* flag : {"scheduler", "momentum", "nesterov", "epochs", "cosine-epochs"})
    check(!vm.count(flag) || vm[flag].defaulted() ||
              (std::string(flag) == "nesterov" && !vm[flag].as<bool>()),
          "--", flag, " does not apply to --model gpt");
  check(optim_name == "adamw" || optim_name == "adam" || optim_name == "sgd",
        "--model gpt trains with --optim adamw, adam or sgd, not ", optim_name);
  check(lr >= 0 && std::isfinite(lr), "invalid learning rate ", lr, " (must be >= 0)");
  check(batch >= 1, "invalid batch size ", batch, " (must be >= 1)");
  check(max_steps >= 0, "invalid --max-steps ", max_steps, " (must be >= 0 for --model gpt)");
  check(clip >= 0 && std::isfinite(clip), "invalid --clip-grad-norm ", clip);
  check(weight_decay >= 0 && std::isfinite(weight_decay), "invalid weight decay ", weight_decay);
  check(threads >= 1, "invalid number of threads ", threads, " (must be >= 1)");
  check(g.sample >= 0, "invalid --sample ", g.sample, " (must be >= 0)");
  check(g.temperature > 0 && std::isfinite(g.temperature), "invalid --temperature ", g.temperature,
        " (must be > 0)");
  check(g.top_k >= 0, "invalid --top-k ", g.top_k, " (must be >= 0; 0: all characters)");
  check(g.eval_interval >= 1 && g.eval_blocks >= 1,
        "--eval-interval and --eval-blocks must be >= 1");
  for (const auto& [flag, path] : {std::pair<const char*, const std::string&>{"--log", log},
                                   {"--dot", dot},
                                   {"--save", save}}) {
    if (path.empty()) continue;
    const std::filesystem::path folder = std::filesystem::absolute(path).parent_path();
    check(std::filesystem::is_directory(folder), flag, ": the folder '", folder.string(), "' of '",
          path, "' does not exist");
  }
  set_num_threads(threads);
  set_flush_denormal(true);
  manual_seed(seed);

  // The model's shape and vocabulary: from the checkpoint when resuming.
  nn::GPTConfig cfg{.block_size = g.block_size,
                    .n_layer = g.n_layer,
                    .n_head = g.n_head,
                    .n_embd = g.n_embd,
                    .dtype = float32};
  std::optional<data::TextDataset> text;
  std::map<std::string, std::string> meta;
  if (!resume.empty()) {
    meta = io::load_safetensors_metadata(resume);
    for (const char* key : {"gpt.vocab", "gpt.n_layer", "gpt.n_head", "gpt.n_embd",
                            "gpt.block_size", "train.step", "train.optim", "train.batch_size"})
      check(meta.count(key), "--resume: '", resume,
            "' is not a checkpoint of xgrad-train --model gpt (no '", key, "')");
    // Sampling from a checkpoint trains no further unless --max-steps asks for more.
    if (g.sample > 0 && (!vm.count("max-steps") || vm["max-steps"].defaulted()))
      max_steps = std::stoll(meta.at("train.step"));
    cfg.n_layer = std::stoll(meta.at("gpt.n_layer"));
    cfg.n_head = std::stoll(meta.at("gpt.n_head"));
    cfg.n_embd = std::stoll(meta.at("gpt.n_embd"));
    cfg.block_size = std::stoll(meta.at("gpt.block_size"));
    check(meta.at("train.optim") == optim_name, "--resume: '", resume,
          "' was written with --optim ", meta.at("train.optim"), ", this run has ", optim_name);
    check(meta.at("train.batch_size") == std::to_string(batch), "--resume: '", resume,
          "' was written with --batch-size ", meta.at("train.batch_size"), ", this run has ",
          batch);
    text.emplace(data_path, data::Vocabulary::from_string(meta.at("gpt.vocab")));
  } else {
    text.emplace(data_path);
  }
  cfg.vocab_size = text->vocab().size();
  nn::GPT model(cfg);
  const std::vector<Tensor> params = model.parameters();
  std::unique_ptr<optim::Optimizer> optimizer;
  if (optim_name == "adamw")
    optimizer = std::make_unique<optim::AdamW>(
        params, optim::AdamWOptions(lr).betas(0.9, 0.99).weight_decay(weight_decay));
  else if (optim_name == "adam")
    optimizer = std::make_unique<optim::Adam>(
        params, optim::AdamOptions(lr).betas(0.9, 0.99).weight_decay(weight_decay));
  else
    optimizer =
        std::make_unique<optim::SGD>(params, optim::SGDOptions(lr).weight_decay(weight_decay));
  std::int64_t step = 0;
  if (!resume.empty()) {
    io::load_checkpoint(resume, model, *optimizer);
    step = std::stoll(meta.at("train.step"));
  }

  std::int64_t n_params = 0;
  for (const Tensor& p : params) n_params += p.numel();
  std::printf(
      "xgrad-train: model gpt (%lld layers, %lld heads, %lld wide, block %lld, %.2fM "
      "parameters), optimizer %s, lr %s, weight decay %s, clip grad norm %s, batch size %lld, "
      "%lld steps, seed %llu, %d thread(s)\n",
      static_cast<long long>(cfg.n_layer), static_cast<long long>(cfg.n_head),
      static_cast<long long>(cfg.n_embd), static_cast<long long>(cfg.block_size),
      static_cast<double>(n_params) / 1e6, optim_name.c_str(), gpt_detail::num(lr).c_str(),
      gpt_detail::num(weight_decay).c_str(), gpt_detail::num(clip).c_str(),
      static_cast<long long>(batch), static_cast<long long>(max_steps),
      static_cast<unsigned long long>(seed), threads);
  std::printf("data: %lld training and %lld validation characters (%lld distinct) from %s\n",
              static_cast<long long>(text->size(data::Split::train)),
              static_cast<long long>(text->size(data::Split::test)),
              static_cast<long long>(text->vocab().size()), data_path.c_str());
  if (!resume.empty())
    std::printf("resumed from %s at step %lld\n", resume.c_str(), static_cast<long long>(step));
  std::fflush(stdout);

  const auto offsets =
      gpt_detail::eval_offsets(text->size(data::Split::test), cfg.block_size, g.eval_blocks);
  auto report_val = [&](std::int64_t at, double train_loss) {
    const double v = gpt_detail::evaluate(model, *text, offsets, cfg.block_size);
    std::printf("step %lld  train loss %.4f  val loss %.4f nats/char (%.4f bits/char)\n",
                static_cast<long long>(at), train_loss, v, v / std::log(2.0));
    std::fflush(stdout);
    return v;
  };
  auto write_checkpoint = [&] {
    std::map<std::string, std::string> m = {{"train.model", "gpt"},
                                            {"train.optim", optim_name},
                                            {"train.lr", gpt_detail::num(lr)},
                                            {"train.batch_size", std::to_string(batch)},
                                            {"train.seed", std::to_string(seed)},
                                            {"train.step", std::to_string(step)},
                                            {"gpt.vocab", text->vocab().to_string()},
                                            {"gpt.n_layer", std::to_string(cfg.n_layer)},
                                            {"gpt.n_head", std::to_string(cfg.n_head)},
                                            {"gpt.n_embd", std::to_string(cfg.n_embd)},
                                            {"gpt.block_size", std::to_string(cfg.block_size)}};
    io::save_checkpoint(save, model, *optimizer, {.metadata = m});
  };

  const bool tty = ::isatty(STDERR_FILENO) != 0;
  std::ostringstream log_text;
  log_text << "step,loss,lr,val_loss\n";
  const std::int64_t first_step = step;
  double window = 0;
  std::int64_t window_n = 0;
  double last_train = NAN;
  const auto t0 = Clock::now();
  auto t_report = t0;
  // Time spent outside training (evaluation, checkpoints, the --dot picture): tokens/s leave it
  // out, as tools/torch_gpt.py's does.
  double paused = 0;
  bool dot_written = false;
  if (!resume.empty() && step >= max_steps)
    std::printf(
        "nothing to train: the checkpoint is at step %lld (--max-steps counts from the "
        "start of the run)\n",
        static_cast<long long>(step));
  while (step < max_steps) {
    data::Batch b = text->sample_batch(data::Split::train, batch, cfg.block_size);
    const bool draw = step == first_step && !dot.empty();
    std::optional<viz::record_data_inputs> record;
    if (draw) {
      record.emplace();
      b.inputs.set_name("characters");
      b.labels.set_name("next characters");
    }
    Tensor loss = model.loss(b.inputs, b.labels);
    record.reset();
    if (draw) {
      const auto tp = Clock::now();
      loss.set_name("loss");
      viz::write_graph(dot, {loss}, {.title = "xgrad-train: one training step of the gpt"});
      dot_written = true;
      paused += std::chrono::duration<double>(Clock::now() - tp).count();
    }
    const double l = loss.item();
    if (!std::isfinite(l) && !allow_nonfinite) {
      if (tty) std::fprintf(stderr, "\n");
      std::fprintf(stderr,
                   "xgrad-train: the training loss is %s at step %lld: stopping; lower --lr, or "
                   "pass --allow-nonfinite to keep training\n",
                   std::isnan(l) ? "nan" : "inf", static_cast<long long>(step + 1));
      return 1;
    }
    optimizer->zero_grad();
    loss.backward();
    if (clip > 0) nn::clip_grad_norm_(params, clip);
    optimizer->step();
    ++step;
    window += l;
    ++window_n;
    const bool at_eval = step % g.eval_interval == 0 || step == max_steps;
    if (!log.empty())
      log_text << step << "," << l << "," << optimizer->param_groups()[0].lr() << ",";
    const auto now = Clock::now();
    if (tty && (now - t_report > std::chrono::milliseconds(100) || step == max_steps)) {
      t_report = now;
      const double secs = std::chrono::duration<double>(now - t0).count() - paused;
      std::fprintf(
          stderr, "\rstep %s %lld/%lld  loss %.4f  %.0f tokens/s ",
          ("[" + std::string(static_cast<std::size_t>(30.0 * step / max_steps), '#') +
           std::string(30 - static_cast<std::size_t>(30.0 * step / max_steps), '.') + "]")
              .c_str(),
          static_cast<long long>(step), static_cast<long long>(max_steps), window / window_n,
          static_cast<double>((step - first_step) * batch * cfg.block_size) / std::max(secs, 1e-9));
    }
    if (at_eval) {
      const auto tp = Clock::now();
      if (tty) std::fprintf(stderr, "\n");
      last_train = window / window_n;
      const double v = report_val(step, last_train);
      window = 0;
      window_n = 0;
      if (!log.empty()) log_text << v;
      if (!save.empty()) write_checkpoint();
      paused += std::chrono::duration<double>(Clock::now() - tp).count();
    }
    if (!log.empty()) log_text << "\n";
  }
  const double wall_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const double train_seconds = wall_seconds - paused;
  if (step > first_step) {
    std::printf(
        "done: %lld steps, wall time %.2f s (%.2f s training), %.0f tokens/s (training), peak "
        "memory %.1f MiB\n",
        static_cast<long long>(step - first_step), wall_seconds, train_seconds,
        static_cast<double>((step - first_step) * batch * cfg.block_size) /
            std::max(train_seconds, 1e-9),
        gpt_detail::peak_rss_mib());
  } else if (!resume.empty()) {
    const double v = gpt_detail::evaluate(model, *text, offsets, cfg.block_size);
    std::printf("val loss %.4f nats/char (%.4f bits/char)\n", v, v / std::log(2.0));
  }
  if (!log.empty()) {
    io::write_file_atomically(log, log_text.str());
    std::printf("loss curve written to %s\n", log.c_str());
  }
  if (!save.empty() && step > first_step) std::printf("checkpoint written to %s\n", save.c_str());
  if (dot_written) std::printf("graph of one training step written to %s\n", dot.c_str());
  if (g.sample > 0) {
    // Start from a newline: the model begins a fortune.
    const std::int64_t start = std::max<std::int64_t>(text->vocab().id('\n'), 0);
    const Tensor out = model.generate(full({1, 1}, static_cast<double>(start), int64), g.sample,
                                      g.temperature, g.top_k);
    std::printf("sample (%lld characters, temperature %s, top-k %lld):\n%s\n",
                static_cast<long long>(g.sample), gpt_detail::num(g.temperature).c_str(),
                static_cast<long long>(g.top_k),
                text->vocab().decode(slice(out, 1, 1, out.size(1))).c_str());
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace xgrad::train
