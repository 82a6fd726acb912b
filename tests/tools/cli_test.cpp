// xgrad-train as a user runs it: bad input gives one clear line on stderr and exit code 2;
// a short run on a small synthetic Fashion-MNIST-format dataset trains and writes its files; a
// loss that turns NaN stops the run at that step with exit code 1.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/data/idx.hpp"
#include "xgrad/io/safetensors.hpp"

namespace fs = std::filesystem;

namespace {

using xgrad::testing::count_lines;
using xgrad::testing::Run;
using xgrad::testing::slurp;

fs::path temp(const std::string& name) {
  return xgrad::testing::temp_path(name);
}

// Runs xgrad-train with `args`, capturing stdout, stderr and the exit code.
Run run_train(const std::string& args) {
  return xgrad::testing::run_command(std::string(XGRAD_TRAIN_BIN) + " " + args);
}

// A tiny dataset in the IDX layout: class k images are bright in row band k.
fs::path make_dataset(std::int64_t n_train, std::int64_t n_test,
                      const std::string& name = "xgrad_cli_data") {
  const fs::path dir = temp(name);
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

void expect_usage_error(const std::string& args, const std::string& fragment) {
  Run r = run_train(args);
  BOOST_CHECK_MESSAGE(r.code == 2, args << ": exit code " << r.code << ", expected 2");
  BOOST_CHECK_MESSAGE(count_lines(r.err) == 1,
                      args << ": stderr should be one line, got: " << r.err);
  BOOST_CHECK_MESSAGE(r.err.find(fragment) != std::string::npos,
                      args << ": stderr '" << r.err << "' lacks '" << fragment << "'");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli)

BOOST_AUTO_TEST_CASE(unknown_flag_is_a_usage_error) {
  expect_usage_error("--no-such-flag", "no-such-flag");
}

BOOST_AUTO_TEST_CASE(unknown_optimizer_is_a_usage_error) {
  expect_usage_error("--optim lbfgs --data " + make_dataset(20, 10).string(), "lbfgs");
}

BOOST_AUTO_TEST_CASE(negative_learning_rate_is_a_usage_error) {
  expect_usage_error("--lr -0.1 --data " + make_dataset(20, 10).string(), "learning rate");
}

BOOST_AUTO_TEST_CASE(batch_size_zero_is_a_usage_error) {
  expect_usage_error("--batch-size 0 --data " + make_dataset(20, 10).string(), "batch size");
}

BOOST_AUTO_TEST_CASE(stray_word_is_a_usage_error) {
  expect_usage_error("sgd", "positional");
}

BOOST_AUTO_TEST_CASE(max_steps_zero_is_a_usage_error) {
  expect_usage_error("--max-steps 0 --data " + make_dataset(20, 10).string(), "--max-steps");
}

BOOST_AUTO_TEST_CASE(log_into_missing_folder_fails_before_training) {
  Run r = run_train("--log /nonexistent/folder/loss.csv --data " + make_dataset(20, 10).string());
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("--log") != std::string::npos);
  BOOST_TEST(r.out.find("epoch 1") == std::string::npos);  // no training happened
}

BOOST_AUTO_TEST_CASE(missing_data_is_a_usage_error) {
  expect_usage_error("--data /nonexistent/folder", "/nonexistent/folder");
}

BOOST_AUTO_TEST_CASE(corrupt_data_file_is_a_usage_error) {
  const fs::path dir = temp("xgrad_cli_corrupt");
  fs::create_directories(dir);
  fs::copy(make_dataset(20, 10), dir,
           fs::copy_options::overwrite_existing | fs::copy_options::recursive);
  std::ofstream(dir / "train-images-idx3-ubyte.gz", std::ios::trunc) << "not an idx file";
  expect_usage_error("--data " + dir.string(), "train-images");
}

BOOST_AUTO_TEST_CASE(short_run_trains_and_writes_log_and_graph) {
  const fs::path dir = make_dataset(640, 200);
  const fs::path log = temp("xgrad_cli_loss.csv");
  const fs::path dot = temp("xgrad_cli_step.dot");
  fs::remove(log);
  fs::remove(dot);
  Run r = run_train("--data " + dir.string() + " --epochs 3 --batch-size 32 --lr 1e-3 --log " +
                    log.string() + " --dot " + dot.string());
  BOOST_REQUIRE_MESSAGE(r.code == 0, "exit " << r.code << ": " << r.err);
  BOOST_TEST(r.out.find("epoch 3") != std::string::npos);
  BOOST_TEST(r.out.find("samples/s") != std::string::npos);
  BOOST_TEST(r.out.find("peak memory") != std::string::npos);
  // The bands are trivially separable: three epochs reach (nearly) perfect accuracy.
  const auto pos = r.out.rfind("test accuracy ");
  BOOST_REQUIRE(pos != std::string::npos);
  const double acc = std::stod(r.out.substr(pos + 14));
  BOOST_TEST(acc >= 0.95);
  const std::string csv = slurp(log);
  BOOST_TEST(csv.rfind("step,epoch,loss,lr\n", 0) == 0);
  BOOST_TEST(count_lines(csv) == 1 + 3 * 20);  // header + 20 steps per epoch
  const std::string graph = slurp(dot);
  BOOST_TEST(graph.find("digraph") == 0);
  BOOST_TEST(graph.find("fc1.weight") != std::string::npos);
  BOOST_TEST(graph.find("cross_entropy") != std::string::npos);
}

// The case: --optim sgd --lr 1e6 makes the loss NaN within a few steps; the run used
// to go on and exit 0 ("train loss -nan", test accuracy 0.1).
BOOST_AUTO_TEST_CASE(nonfinite_loss_stops_the_run) {
  const fs::path dir = make_dataset(640, 200);
  const fs::path log = temp("xgrad_cli_nan_loss.csv");
  const fs::path ckpt = temp("xgrad_cli_nan.safetensors");
  fs::remove(log);
  fs::remove(ckpt);
  Run r = run_train("--data " + dir.string() + " --optim sgd --lr 1e6 --batch-size 32 --epochs 2 " +
                    "--log " + log.string() + " --save " + ckpt.string());
  BOOST_TEST(r.code == 1);
  BOOST_TEST(count_lines(r.err) == 1);
  // No epoch finished, nothing saved.
  BOOST_TEST(r.out.find("epoch 1 ") == std::string::npos);
  BOOST_TEST(r.out.find("done:") == std::string::npos);
  BOOST_TEST(!fs::exists(ckpt));
  // The log ends at the step whose loss is NaN (the steps before it are finite); the message
  // names that step and its epoch, word for word.
  const std::string csv = slurp(log);
  const std::int64_t steps = count_lines(csv) - 1;
  BOOST_REQUIRE(steps >= 1);
  std::istringstream lines(csv);
  std::string line;
  std::getline(lines, line);  // header step,epoch,loss,lr
  for (std::int64_t i = 1; std::getline(lines, line); ++i) {
    const auto a = line.find(','), b = line.find(',', a + 1), c = line.find(',', b + 1);
    const double loss = std::strtod(line.substr(b + 1, c - b - 1).c_str(), nullptr);
    BOOST_TEST_CONTEXT("log line " << i << ": " << line) {
      BOOST_TEST(line.substr(0, b) == std::to_string(i) + ",1");
      BOOST_TEST((i < steps ? std::isfinite(loss) : std::isnan(loss)));
    }
  }
  const std::string expected =
      "xgrad-train: the training loss is nan at epoch 1, step " + std::to_string(steps) +
      " (batch " + std::to_string(steps) +
      " of 20): stopping; lower --lr or use --clip-grad-norm, or pass --allow-nonfinite to keep "
      "training\n";
  BOOST_TEST(r.err == expected);

  // --allow-nonfinite keeps going (the old behaviour), exit 0.
  Run k = run_train("--data " + dir.string() +
                    " --optim sgd --lr 1e6 --batch-size 32 --epochs 2 --max-steps 25 "
                    "--allow-nonfinite");
  BOOST_TEST(k.code == 0);
  BOOST_TEST(k.out.find("epoch 2") != std::string::npos);
  BOOST_TEST(k.out.find("done: 25 steps") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(empty_training_set_is_refused_up_front) {
  const fs::path dir = make_dataset(0, 10, "xgrad_cli_empty");
  Run r = run_train("--data " + dir.string() + " --epochs 1");
  BOOST_TEST(r.code == 2);
  BOOST_TEST(count_lines(r.err) == 1);
  // The data layer may refuse it first (with its own words); either way the message names the
  // folder and nothing trains.
  BOOST_TEST(r.err.find(dir.string()) != std::string::npos);
  BOOST_TEST(r.out.find("epoch 1") == std::string::npos);
  BOOST_TEST(r.out.find("done:") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(dot_with_unknown_extension_is_refused_up_front) {
  const fs::path dir = make_dataset(20, 10);
  const fs::path jpg = temp("xgrad_cli_step.jpg");
  fs::remove(jpg);
  Run r = run_train("--data " + dir.string() + " --dot " + jpg.string());
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err == "xgrad-train: --dot: cannot tell the format of '" + jpg.string() +
                          "' from its extension '.jpg': name it .dot or .gv (DOT text), or .svg, "
                          ".png or .pdf (drawn by Graphviz)\n");
  BOOST_TEST(!fs::exists(jpg));
  BOOST_TEST(r.out.find("epoch 1") == std::string::npos);
  const fs::path bare = temp("xgrad_cli_step");
  Run b = run_train("--data " + dir.string() + " --dot " + bare.string());
  BOOST_TEST(b.code == 2);
  BOOST_TEST(b.err == "xgrad-train: --dot: cannot tell the format of '" + bare.string() +
                          "' (no extension): name it .dot or .gv (DOT text), or .svg, .png or "
                          ".pdf (drawn by Graphviz)\n");
  // .gv is DOT text too, whatever the case of the extension.
  const fs::path gv = temp("xgrad_cli_step.GV");
  fs::remove(gv);
  Run g = run_train("--data " + dir.string() + " --max-steps 1 --dot " + gv.string());
  BOOST_REQUIRE_MESSAGE(g.code == 0, g.err);
  BOOST_TEST(slurp(gv).find("digraph") == 0);
}

BOOST_AUTO_TEST_CASE(malformed_step_in_checkpoint_names_key_file_and_value) {
  const fs::path dir = make_dataset(64, 10);
  const fs::path ckpt = temp("xgrad_cli_bad_step.safetensors");
  const std::string args = "--data " + dir.string() + " --batch-size 32 --epochs 2";
  Run r = run_train(args + " --max-steps 2 --save " + ckpt.string());
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  auto file = xgrad::io::load_safetensors(ckpt.string());
  for (const std::string bad : {"2x", "", "-1", "99999999999999999999"}) {
    file.metadata["train.step"] = bad;
    xgrad::io::save_safetensors(ckpt.string(), file.tensors, file.metadata);
    Run b = run_train(args + " --resume " + ckpt.string());
    BOOST_TEST(b.code == 2);
    BOOST_TEST(b.err == "xgrad-train: --resume: '" + ckpt.string() +
                            "' has a malformed 'train.step' in its metadata: '" + bad +
                            "' (expected a whole number >= 0)\n");
  }
  fs::remove(ckpt);
}

BOOST_AUTO_TEST_SUITE_END()
