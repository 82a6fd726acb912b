// xgrad-train as a user runs it: bad input gives one clear line on stderr and exit code 2;
// a short run on a small synthetic Fashion-MNIST-format dataset trains and writes its files.
#include <filesystem>
#include <fstream>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/data/idx.hpp"

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
fs::path make_dataset(std::int64_t n_train, std::int64_t n_test) {
  const fs::path dir = temp("xgrad_cli_data");
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

BOOST_AUTO_TEST_SUITE_END()
