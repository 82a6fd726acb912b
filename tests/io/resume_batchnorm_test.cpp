// xgrad-train --model mlp-bn --save / --resume: the checkpoint carries the BatchNorm running
// statistics (buffers), so a run checkpointed after epoch 1 and resumed for epoch 2 evaluates
// (test loss and accuracy, computed with the running statistics) and ends exactly as a run that
// did both epochs in one go, down to a byte-identical final checkpoint. Before buffers were
// saved, the resumed run evaluated with reset statistics. Runs the built xgrad-train binary on
// a small synthetic dataset in the Fashion-MNIST file layout (as resume_test.cpp does).
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/data/idx.hpp"
#include "xgrad/io/safetensors.hpp"

namespace fs = std::filesystem;
using xgrad::testing::Run;
using xgrad::testing::slurp;
using xgrad::testing::values_of;

namespace {

// The xgrad-train binary: XGRAD_TRAIN_BIN when tests/CMakeLists.txt defines it, else next to
// the tests/ folder this test binary is in (the build folder's top level).
std::string train_bin() {
#ifdef XGRAD_TRAIN_BIN
  return XGRAD_TRAIN_BIN;
#else
  return (fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "xgrad-train").string();
#endif
}

fs::path case_dir() {
  const std::string name = boost::unit_test::framework::current_test_case().p_name.get() + "_" +
                           std::to_string(::getpid());
  const fs::path dir = fs::temp_directory_path() / ("xgrad_resume_bn_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  for (std::string l; std::getline(is, l);) out.push_back(l);
  return out;
}

Run run_train(const std::string& args) {
  return xgrad::testing::run_command(train_bin() + " " + args);
}

// Class k images are bright in row band k, plus a per-sample speckle.
fs::path make_dataset(const fs::path& dir, std::int64_t n_train, std::int64_t n_test) {
  const fs::path data = dir / "data";
  fs::create_directories(data);
  auto write = [&](const std::string& prefix, std::int64_t n) {
    xgrad::data::IdxArray images{{n, 28, 28}, std::vector<std::uint8_t>(n * 784, 0)};
    xgrad::data::IdxArray labels{{n}, std::vector<std::uint8_t>(n, 0)};
    std::uint32_t noise = 4242;
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

}  // namespace

BOOST_AUTO_TEST_SUITE(resume_batchnorm)

BOOST_AUTO_TEST_CASE(mlp_bn_resumed_after_epoch_1_equals_two_epochs) {
  const fs::path dir = case_dir();
  const fs::path data = make_dataset(dir, 320, 100);  // 10 steps per epoch at batch size 32
  const std::string common = "--model mlp-bn --data " + data.string() +
                             " --batch-size 32 --seed 7 --optim momentum --lr 0.05";
  const fs::path ckpt = dir / "ckpt.safetensors", end_a = dir / "end_a.safetensors",
                 end_b = dir / "end_b.safetensors";
  Run a = run_train(common + " --epochs 2 --save " + end_a.string());
  BOOST_REQUIRE_MESSAGE(a.code == 0, "uninterrupted run: exit " << a.code << ": " << a.err);
  Run b1 = run_train(common + " --epochs 1 --save " + ckpt.string());
  BOOST_REQUIRE_MESSAGE(b1.code == 0, "first part: exit " << b1.code << ": " << b1.err);
  Run b2 =
      run_train(common + " --epochs 2 --resume " + ckpt.string() + " --save " + end_b.string());
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
  Run r = run_train(common + " --model mlp-bn --save " + ckpt.string());
  BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
  Run bad = run_train(common + " --model mlp --epochs 2 --resume " + ckpt.string());
  BOOST_TEST(bad.code == 2);
  BOOST_TEST(bad.err.find("mlp-bn") != std::string::npos, "stderr: " << bad.err);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
