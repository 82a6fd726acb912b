// xgrad-train --watch / --plot / --eval-every and the progress bar, run as a user runs them on a
// small synthetic Fashion-MNIST-format dataset: a learning rate that blows the run up is
// named (module and step) by the recorder before the loss turns NaN; the CSV holds every step;
// the SVGs validate with xmllint; the progress bar counts to --max-steps and shows an ETA.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <sstream>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/data/idx.hpp"

namespace fs = std::filesystem;

namespace {

using xgrad::testing::count_lines;
using xgrad::testing::Run;
using xgrad::testing::slurp;
using xgrad::testing::TempDir;

Run run_train(const std::string& args) {
  return xgrad::testing::run_command(std::string(XGRAD_TRAIN_BIN) + " " + args);
}

// A tiny dataset in the IDX layout: class k images are bright in row band k.
fs::path make_dataset(const TempDir& tmp, std::int64_t n_train, std::int64_t n_test) {
  const fs::path dir = fs::path(tmp.path) / "data";
  fs::create_directories(dir);
  auto write = [&](const std::string& prefix, std::int64_t n) {
    xgrad::data::IdxArray images{{n, 28, 28}, std::vector<std::uint8_t>(n * 784, 0)};
    xgrad::data::IdxArray labels{{n}, std::vector<std::uint8_t>(n, 0)};
    for (std::int64_t i = 0; i < n; ++i) {
      const int k = static_cast<int>(i % 10);
      labels.data[i] = static_cast<std::uint8_t>(k);
      for (int r = 2 * k; r < 2 * k + 3; ++r)
        for (int c = 0; c < 28; ++c) images.data[i * 784 + r * 28 + c] = 200;
    }
    xgrad::data::write_idx(dir / (prefix + "-images-idx3-ubyte.gz"), images);
    xgrad::data::write_idx(dir / (prefix + "-labels-idx1-ubyte.gz"), labels);
  };
  write("train", n_train);
  write("t10k", n_test);
  return dir;
}

// The rows of a --watch CSV of kind "module" for `name`: step -> grad_norm.
std::map<long, double> module_norms(const std::string& csv, const std::string& name) {
  std::map<long, double> out;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string cell; std::getline(ls, cell, ',');) f.push_back(cell);
    BOOST_REQUIRE_EQUAL(f.size(), 9u);
    if (f[3] == "module" && f[4] == name) out[std::stol(f[0])] = std::stod(f[5]);
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(watch_cli)

// Must-show: the recorder names the first module and step whose gradient norm exceeds its
// trigger, before the loss turns NaN (SGD with lr 1e6 turns it NaN within a few steps).
BOOST_AUTO_TEST_CASE(exploding_learning_rate_is_named_before_the_nan) {
  TempDir tmp;
  const fs::path data = make_dataset(tmp, 320, 50), csv = fs::path(tmp.path) / "watch.csv";
  Run r = run_train("--data " + data.string() + " --optim sgd --lr 1e6 --batch-size 32 --watch " +
                    csv.string());
  BOOST_TEST_MESSAGE(r.out << r.err);
  BOOST_TEST(r.code == 1);
  std::smatch nan, boom;
  BOOST_REQUIRE(
      std::regex_search(r.err, nan, std::regex("loss is -?(nan|inf) at epoch 1, step (\\d+)")));
  BOOST_REQUIRE(std::regex_search(
      r.err, boom,
      std::regex("recorder: step (\\d+): module (fc\\d): gradient norm \\S+ exceeds its trigger")));
  const long nan_step = std::stol(nan[2]), boom_step = std::stol(boom[1]);
  BOOST_TEST(boom_step < nan_step);
  // The record up to the NaN is written, and agrees: the named module's norm at that step is
  // over 100 times its norm at step 1, and no step before it was.
  const auto norms = module_norms(slurp(csv), boom[2]);
  BOOST_TEST(static_cast<long>(norms.size()) == nan_step - 1);
  BOOST_TEST(norms.at(boom_step) > 100 * norms.at(1));
  for (long s = 2; s < boom_step; ++s) BOOST_TEST(norms.at(s) <= 100 * norms.at(1));
  BOOST_TEST(r.out.find("gradient record (" + std::to_string(nan_step - 1) + " steps) written") !=
             std::string::npos);
}

// Adam with --lr 10: the second step's gradients are orders of magnitude above the first's,
// and the recorder says so, module by module, at step 2.
BOOST_AUTO_TEST_CASE(lr_10_fires_the_exploding_trigger) {
  TempDir tmp;
  const fs::path data = make_dataset(tmp, 320, 50), csv = fs::path(tmp.path) / "watch.csv";
  Run r = run_train("--data " + data.string() + " --lr 10 --batch-size 32 --max-steps 10 --watch " +
                    csv.string());
  BOOST_TEST_MESSAGE(r.out << r.err);
  BOOST_TEST(r.code == 0);
  std::smatch first;
  BOOST_REQUIRE(std::regex_search(r.err, first,
                                  std::regex("recorder: step (\\d+): module (\\S+): ([^\\n]*)")));
  BOOST_TEST(first[1] == "2");
  BOOST_TEST(first[2] == "fc1");
  BOOST_TEST(std::string(first[3]).find("(exploding)") != std::string::npos);
  const auto norms = module_norms(slurp(csv), "fc1");
  BOOST_TEST(norms.size() == 10u);
  BOOST_TEST(norms.at(2) > 100 * norms.at(1));
}

// --plot writes four SVGs that xmllint accepts; --eval-every adds test losses.
BOOST_AUTO_TEST_CASE(plots_are_valid_svg) {
  BOOST_REQUIRE_MESSAGE(std::system("command -v xmllint >/dev/null 2>&1") == 0,
                        "xmllint is missing (apt-get install libxml2-utils; tools/dev setup)");
  TempDir tmp;
  const fs::path data = make_dataset(tmp, 320, 50), dir = fs::path(tmp.path) / "plots";
  Run r = run_train("--data " + data.string() +
                    " --batch-size 16 --epochs 2 --eval-every 5 --plot " + dir.string());
  BOOST_TEST_MESSAGE(r.out << r.err);
  BOOST_REQUIRE(r.code == 0);
  BOOST_TEST(r.out.find("plots written to " + dir.string() +
                        ": loss.svg, lr.svg, grad_norms.svg, update_ratios.svg") !=
             std::string::npos);
  for (const char* name : {"loss.svg", "lr.svg", "grad_norms.svg", "update_ratios.svg"}) {
    const fs::path f = dir / name;
    BOOST_REQUIRE_MESSAGE(fs::exists(f), f);
    Run x = xgrad::testing::run_command("xmllint --noout " + f.string());
    BOOST_TEST(x.code == 0, name << ": " << x.err);
  }
  const std::string loss = slurp(dir / "loss.svg");
  BOOST_TEST(loss.find("<title>test</title>") != std::string::npos);
  BOOST_TEST(loss.find("<title>train</title>") != std::string::npos);
  const std::string norms = slurp(dir / "grad_norms.svg");
  for (const char* m : {"fc1", "fc2", "fc3"})
    BOOST_TEST(norms.find(std::string("<title>") + m + "</title>") != std::string::npos);
  BOOST_TEST(norms.find("log scale") != std::string::npos);
}

// The progress bar (drawn when stderr is a terminal: `script` gives it one) counts the run's
// steps — to --max-steps, not the epoch's 320 batches — and shows an ETA.
BOOST_AUTO_TEST_CASE(progress_bar_counts_to_max_steps_with_an_eta) {
  BOOST_REQUIRE_MESSAGE(std::system("command -v script >/dev/null 2>&1") == 0,
                        "`script` (util-linux) is missing");
  TempDir tmp;
  const fs::path data = make_dataset(tmp, 320, 50);
  Run r = xgrad::testing::run_command("script -qec '" + std::string(XGRAD_TRAIN_BIN) + " --data " +
                                      data.string() + " --batch-size 1 --max-steps 40' /dev/null");
  BOOST_TEST_MESSAGE(r.out << r.err);
  BOOST_REQUIRE(r.code == 0);
  BOOST_TEST(r.out.find(" 40/40  loss ") != std::string::npos);
  BOOST_TEST(r.out.find("/320") == std::string::npos);
  BOOST_TEST(r.out.find("ETA 0s") != std::string::npos);  // at the last step, nothing is left
  BOOST_TEST(r.out.find("epoch 1/1 [##############################]") != std::string::npos);
}

// Recording holds its ring buffer, not a step's worth of memory per step: 2,000 steps of batch
// size 1 (whose 800 KB weight gradient is freed and allocated again each step) peak within
// 10 MiB of the same run without --watch (the ring: 2.9 MB). (Steps that each kept a small
// allocation alive once grew the heap by ~250 KiB per step: +1.1 GB over 4,000 steps.)
BOOST_AUTO_TEST_CASE(recording_does_not_grow_memory_with_the_steps) {
  TempDir tmp;
  const fs::path data = make_dataset(tmp, 320, 50), csv = fs::path(tmp.path) / "watch.csv";
  auto peak = [&](const std::string& extra) {
    Run r = run_train("--data " + data.string() + " --optim sgd --lr 0.01 --batch-size 1 " +
                      "--epochs 7 --max-steps 2000 " + extra);
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    std::smatch m;
    BOOST_REQUIRE(std::regex_search(r.out, m, std::regex("peak memory ([0-9.]+) MiB")));
    return std::stod(m[1]);
  };
  const double plain = peak(""), watched = peak("--watch " + csv.string());
  BOOST_TEST_MESSAGE("peak memory " << plain << " MiB plain, " << watched << " MiB with --watch");
  BOOST_TEST(watched < plain + 10);
}

BOOST_AUTO_TEST_CASE(bad_watch_flags_are_usage_errors) {
  TempDir tmp;
  const fs::path data = make_dataset(tmp, 20, 10);
  struct Case {
    std::string args, fragment;
  };
  for (const Case& c : std::vector<Case>{
           {"--watch /nonexistent/folder/w.csv", "--watch: the folder"},
           {"--plot /nonexistent/folder/plots", "--plot: '/nonexistent/folder/plots'"},
           {"--eval-every 5", "--eval-every applies with --watch or --plot only"},
           {"--plot " + tmp.path + " --eval-every -1", "invalid --eval-every -1"}}) {
    Run r = run_train(c.args + " --data " + data.string());
    BOOST_TEST(r.code == 2, c.args);
    BOOST_TEST(count_lines(r.err) == 1, c.args << ": " << r.err);
    BOOST_TEST(r.err.find(c.fragment) != std::string::npos, c.args << ": " << r.err);
  }
}

BOOST_AUTO_TEST_SUITE_END()
