// xgrad-train --save / --resume: a run checkpointed after epoch 1 and resumed for epoch 2 gives,
// line by line and digit for digit, the loss curve (--log CSV) of a run that did both epochs in
// one go with the same seed, and ends with a byte-identical checkpoint — with each optimizer
// family, momentum, Nesterov, weight decay, gradient clipping and each kind of schedule, and from a
// checkpoint taken mid-epoch by
// --max-steps. Plus the new flags' usage errors. Runs the built xgrad-train binary on a small
// synthetic dataset in the Fashion-MNIST file layout (as tests/tools/cli_test.cpp does).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/data/idx.hpp"
#include "xgrad/io/safetensors.hpp"

namespace fs = std::filesystem;

namespace {

// The xgrad-train binary: XGRAD_TRAIN_BIN when tests/CMakeLists.txt defines it for this test,
// else next to the tests/ folder this test binary is in (the build folder's top level).
std::string train_bin() {
#ifdef XGRAD_TRAIN_BIN
  return XGRAD_TRAIN_BIN;
#else
  return (fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "xgrad-train").string();
#endif
}

// A folder of its own per test case and process (ctest runs cases in parallel).
fs::path case_dir() {
  const std::string name = boost::unit_test::framework::current_test_case().p_name.get() + "_" +
                           std::to_string(::getpid());
  const fs::path dir = fs::temp_directory_path() / ("xgrad_resume_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

using xgrad::testing::Run;
using xgrad::testing::slurp;
using xgrad::testing::values_of;

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  for (std::string l; std::getline(is, l);) out.push_back(l);
  return out;
}

Run run_train(const fs::path&, const std::string& args) {
  return xgrad::testing::run_command(train_bin() + " " + args);
}

// Class k images are bright in row band k, plus a per-sample speckle so that the classes are
// not trivially separable (the loss keeps moving for a few epochs).
fs::path make_dataset(const fs::path& dir, std::int64_t n_train, std::int64_t n_test) {
  const fs::path data = dir / "data";
  fs::create_directories(data);
  auto write = [&](const std::string& prefix, std::int64_t n) {
    xgrad::data::IdxArray images{{n, 28, 28}, std::vector<std::uint8_t>(n * 784, 0)};
    xgrad::data::IdxArray labels{{n}, std::vector<std::uint8_t>(n, 0)};
    std::uint32_t noise = 12345;
    for (std::int64_t i = 0; i < n; ++i) {
      const int k = static_cast<int>(i % 10);
      labels.data[i] = static_cast<std::uint8_t>(k);
      for (int r = 2 * k; r < 2 * k + 3; ++r)
        for (int c = 0; c < 28; ++c) images.data[i * 784 + r * 28 + c] = 120;
      for (int j = 0; j < 60; ++j) {
        noise = noise * 1664525u + 1013904223u;
        images.data[i * 784 + (noise >> 8) % 784] = static_cast<std::uint8_t>(noise >> 24);
      }
    }
    xgrad::data::write_idx(data / (prefix + "-images-idx3-ubyte.gz"), images);
    xgrad::data::write_idx(data / (prefix + "-labels-idx1-ubyte.gz"), labels);
  };
  write("train", n_train);
  write("t10k", n_test);
  return data;
}

std::string epoch_line(const std::string& out, int epoch) {
  for (const auto& l : lines(out))
    if (l.rfind("epoch " + std::to_string(epoch) + " ", 0) == 0) return l;
  return "";
}

// Trains `epochs` epochs in one run, and again as run 1 (`first_args`, with --save) + run 2
// (--resume, the full --epochs), and checks the --log CSVs agree line by line.
void check_resume(const std::string& settings, int epochs, const std::string& first_args,
                  bool compare_last_epoch_line = true) {
  const fs::path dir = case_dir();
  const fs::path data = make_dataset(dir, 320, 100);  // 10 steps per epoch at batch size 32
  const std::string common = "--data " + data.string() + " --batch-size 32 --seed 7 " + settings;
  const fs::path full = dir / "full.csv", part1 = dir / "part1.csv", part2 = dir / "part2.csv",
                 ckpt = dir / "ckpt.safetensors", end_a = dir / "end_a.safetensors",
                 end_b = dir / "end_b.safetensors";

  Run a = run_train(dir, common + " --epochs " + std::to_string(epochs) + " --log " +
                             full.string() + " --save " + end_a.string());
  BOOST_REQUIRE_MESSAGE(a.code == 0, "uninterrupted run: exit " << a.code << ": " << a.err);
  Run b1 = run_train(
      dir, common + " " + first_args + " --save " + ckpt.string() + " --log " + part1.string());
  BOOST_REQUIRE_MESSAGE(b1.code == 0, "first part: exit " << b1.code << ": " << b1.err);
  BOOST_REQUIRE(fs::exists(ckpt));
  Run b2 =
      run_train(dir, common + " --epochs " + std::to_string(epochs) + " --resume " + ckpt.string() +
                         " --log " + part2.string() + " --save " + end_b.string());
  BOOST_REQUIRE_MESSAGE(b2.code == 0, "resumed run: exit " << b2.code << ": " << b2.err);
  BOOST_TEST(b2.out.find("resumed from " + ckpt.string()) != std::string::npos);

  const auto want = lines(slurp(full));
  auto got = lines(slurp(part1));
  const auto second = lines(slurp(part2));
  BOOST_REQUIRE(!second.empty());
  BOOST_CHECK_EQUAL(second[0], "step,epoch,loss,lr");
  got.insert(got.end(), second.begin() + 1, second.end());
  BOOST_CHECK_EQUAL(want.size(), static_cast<std::size_t>(1 + 10 * epochs));
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    BOOST_CHECK_MESSAGE(got[i] == want[i], "line " << i + 1 << ": resumed '" << got[i]
                                                   << "' != uninterrupted '" << want[i] << "'");
  // The losses must actually move (a constant curve would match trivially).
  BOOST_CHECK(want[1] != want[want.size() - 1]);
  // Stronger than the 6 digits of the log: the final checkpoints — every parameter and optimizer
  // state bit, schedule, loader position and random generator — are the same bytes.
  const std::string bytes_a = slurp(end_a), bytes_b = slurp(end_b);
  BOOST_CHECK_GT(bytes_a.size(), 1000000u);
  BOOST_CHECK_MESSAGE(bytes_a == bytes_b, "the final checkpoints differ");
  if (compare_last_epoch_line) {
    const std::string last = epoch_line(a.out, epochs);
    BOOST_CHECK(!last.empty());
    BOOST_CHECK_EQUAL(epoch_line(b2.out, epochs), last);
  }
}

void expect_usage_error(const fs::path& dir, const std::string& args, const std::string& fragment) {
  Run r = run_train(dir, args);
  BOOST_CHECK_MESSAGE(r.code == 2, args << ": exit code " << r.code << ", expected 2");
  BOOST_CHECK_MESSAGE(lines(r.err).size() == 1, args << ": stderr should be one line: " << r.err);
  BOOST_CHECK_MESSAGE(r.err.find(fragment) != std::string::npos,
                      args << ": stderr '" << r.err << "' lacks '" << fragment << "'");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(resume)

BOOST_AUTO_TEST_CASE(adam_save_after_epoch_1_then_resume_equals_two_epochs) {
  check_resume("--optim adam --lr 1e-3", 2, "--epochs 1");
}

BOOST_AUTO_TEST_CASE(sgd_nesterov_weight_decay_clipping_cosine_resumes_exactly) {
  check_resume(
      "--optim sgd --lr 0.05 --momentum 0.9 --nesterov --weight-decay 1e-4 --clip-grad-norm 0.5 "
      "--scheduler cosine --cosine-epochs 3",
      3, "--epochs 1");
}

BOOST_AUTO_TEST_CASE(rmsprop_momentum_plateau_resumes_exactly) {
  check_resume("--optim rmsprop --lr 1e-3 --momentum 0.5 --scheduler plateau", 3, "--epochs 2");
}

BOOST_AUTO_TEST_CASE(adamw_linear_warmup_resumes_exactly) {
  check_resume("--optim adamw --lr 2e-3 --scheduler linear", 2, "--epochs 1");
}

BOOST_AUTO_TEST_CASE(resume_from_a_mid_epoch_checkpoint_finishes_the_epoch) {
  // --max-steps 15 stops (and saves) after batch 5 of epoch 2; the resumed run does the
  // other 5 batches and the schedule steps once at the end of epoch 2, as in one run.
  check_resume("--optim momentum --lr 0.01 --scheduler step", 2, "--epochs 2 --max-steps 15",
               /*compare_last_epoch_line=*/false);
}

BOOST_AUTO_TEST_CASE(resume_with_other_settings_is_refused) {
  const fs::path dir = case_dir();
  const fs::path data = make_dataset(dir, 64, 20);
  const fs::path ckpt = dir / "ckpt.safetensors";
  const std::string common = "--data " + data.string() + " --batch-size 32 ";
  Run r = run_train(dir, common + "--optim adam --scheduler step --save " + ckpt.string());
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  BOOST_TEST(r.out.find("checkpoint written to") != std::string::npos);
  const std::string resume = " --epochs 2 --resume " + ckpt.string();
  expect_usage_error(dir, common + "--optim sgd --scheduler step" + resume, "--optim adam");
  expect_usage_error(dir, common + "--optim adam --scheduler cosine" + resume, "--scheduler step");
  expect_usage_error(dir, "--data " + data.string() + " --batch-size 16 --scheduler step" + resume,
                     "--batch-size 32");
  expect_usage_error(dir, common + "--scheduler step --lr 0.1" + resume, "--lr");
  expect_usage_error(dir, common + "--scheduler step --seed 1" + resume, "--seed 42");
  // A cosine schedule planned over 1 epoch (--epochs 1) cannot become one over 2 on resume.
  const fs::path cos = dir / "cos.safetensors";
  BOOST_REQUIRE_EQUAL(run_train(dir, common + "--scheduler cosine --save " + cos.string()).code, 0);
  expect_usage_error(dir, common + "--scheduler cosine --epochs 2 --resume " + cos.string(),
                     "--cosine-epochs 1");
  expect_usage_error(dir, common + "--resume " + (dir / "missing.safetensors").string(),
                     "missing.safetensors");
  // Not written by xgrad-train: a plain file.
  std::ofstream(dir / "junk.safetensors") << "junk";
  expect_usage_error(dir, common + "--resume " + (dir / "junk.safetensors").string(),
                     "junk.safetensors");
  // Resuming a finished run with the same --epochs trains nothing.
  Run done =
      run_train(dir, common + "--optim adam --scheduler step --epochs 1 --resume " + ckpt.string());
  BOOST_CHECK_EQUAL(done.code, 0);
  BOOST_TEST(done.out.find("nothing to train") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(new_flags_are_documented_and_checked) {
  const fs::path dir = case_dir();
  Run help = run_train(dir, "--help");
  BOOST_CHECK_EQUAL(help.code, 0);
  for (const char* flag : {"--momentum", "--nesterov", "--weight-decay", "--scheduler",
                           "--clip-grad-norm", "--save", "--resume", "cosine", "plateau"})
    BOOST_TEST_CONTEXT(flag) {
      BOOST_TEST(help.out.find(flag) != std::string::npos);
    }
  const fs::path data = make_dataset(dir, 20, 10);
  const std::string d = "--data " + data.string() + " ";
  expect_usage_error(dir, d + "--scheduler triangle", "triangle");
  expect_usage_error(dir, d + "--optim adam --momentum 0.9", "--momentum");
  expect_usage_error(dir, d + "--optim sgd --nesterov", "--nesterov");
  expect_usage_error(dir, d + "--optim rmsprop --nesterov --momentum 0.9", "--nesterov");
  expect_usage_error(dir, d + "--momentum -0.5 --optim sgd", "momentum -0.5");
  expect_usage_error(dir, d + "--weight-decay -1", "weight decay -1");
  expect_usage_error(dir, d + "--clip-grad-norm -1", "--clip-grad-norm -1");
  expect_usage_error(dir, d + "--cosine-epochs 5", "--cosine-epochs");
  expect_usage_error(dir, d + "--save " + (dir / "no" / "such" / "dir.safetensors").string(),
                     "dir.safetensors");
}

// A BatchNorm model (--model mlp-bn) resumes with its running statistics (buffers).

BOOST_AUTO_TEST_CASE(mlp_bn_resumed_after_epoch_1_equals_two_epochs) {
  const fs::path dir = case_dir();
  const fs::path data = make_dataset(dir, 320, 100);  // 10 steps per epoch at batch size 32
  const std::string common = "--model mlp-bn --data " + data.string() +
                             " --batch-size 32 --seed 7 --optim momentum --lr 0.05";
  const fs::path ckpt = dir / "ckpt.safetensors", end_a = dir / "end_a.safetensors",
                 end_b = dir / "end_b.safetensors";
  Run a = run_train(dir, common + " --epochs 2 --save " + end_a.string());
  BOOST_REQUIRE_MESSAGE(a.code == 0, "uninterrupted run: exit " << a.code << ": " << a.err);
  Run b1 = run_train(dir, common + " --epochs 1 --save " + ckpt.string());
  BOOST_REQUIRE_MESSAGE(b1.code == 0, "first part: exit " << b1.code << ": " << b1.err);
  Run b2 = run_train(
      dir, common + " --epochs 2 --resume " + ckpt.string() + " --save " + end_b.string());
  BOOST_REQUIRE_MESSAGE(b2.code == 0, "resumed run: exit " << b2.code << ": " << b2.err);

  // The checkpoint after epoch 1 holds trained statistics: 10 batches tracked.
  const auto mid = xgrad::io::load_safetensors(ckpt.string()).tensors;
  for (const std::string bn : {"bn1", "bn2"}) {
    BOOST_REQUIRE(mid.count(bn + ".running_mean"));
    BOOST_TEST(mid.at(bn + ".num_batches_tracked").item<std::int64_t>() == 10);
    const auto mean = values_of(mid.at(bn + ".running_mean"));
    BOOST_TEST(mean != std::vector<double>(mean.size(), 0.0));
  }
  // Epoch 2's evaluation (with the running statistics) and the final bytes agree.
  const std::string last = epoch_line(a.out, 2);
  BOOST_TEST(!last.empty());
  BOOST_TEST(epoch_line(b2.out, 2) == last);
  BOOST_TEST(epoch_line(b1.out, 1) == epoch_line(a.out, 1));
  const auto end = xgrad::io::load_safetensors(end_b.string()).tensors;
  BOOST_TEST(end.at("bn2.num_batches_tracked").item<std::int64_t>() == 20);
  BOOST_CHECK_MESSAGE(slurp(end_a) == slurp(end_b), "the final checkpoints differ");
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(mlp_bn_checkpoint_does_not_resume_an_mlp) {
  // The model is part of the run's settings: a plain mlp cannot resume an mlp-bn checkpoint.
  const fs::path dir = case_dir();
  const fs::path data = make_dataset(dir, 64, 20);
  const fs::path ckpt = dir / "ckpt.safetensors";
  const std::string common = "--data " + data.string() + " --batch-size 32";
  Run r = run_train(dir, common + " --model mlp-bn --save " + ckpt.string());
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  Run bad = run_train(dir, common + " --model mlp --epochs 2 --resume " + ckpt.string());
  BOOST_TEST(bad.code == 2);
  BOOST_TEST(bad.err.find("mlp-bn") != std::string::npos, "stderr: " << bad.err);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
