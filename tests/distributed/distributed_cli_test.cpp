// xgrad-train --distributed (tools/train/distributed.hpp). With MPI in the build: under
// `mpirun -np 2` only rank 0 prints and saves, the losses and test accuracy are those of one
// process with twice the batch, and --resume needs the same number of processes. Without MPI:
// --distributed is a usage error that says why (issue 16, item 5).
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/data/idx.hpp"

namespace fs = std::filesystem;
using xgrad::testing::Run;
using xgrad::testing::TempDir;

namespace {

Run run_train(const std::string& args) {
  return xgrad::testing::run_command(std::string(XGRAD_TRAIN_BIN) + " " + args);
}

// A tiny IDX dataset: class k images are bright in row band k.
std::string make_dataset(const fs::path& dir, std::int64_t n_train, std::int64_t n_test) {
  auto write = [&](const std::string& prefix, std::int64_t n) {
    xgrad::data::IdxArray images{{n, 28, 28}, std::vector<std::uint8_t>(n * 784, 0)};
    xgrad::data::IdxArray labels{{n}, std::vector<std::uint8_t>(n, 0)};
    for (std::int64_t i = 0; i < n; ++i) {
      const int k = static_cast<int>(i % 10);
      labels.data[i] = static_cast<std::uint8_t>(k);
      for (int r = 2 * k; r < 2 * k + 3; ++r)
        for (int c = 0; c < 28; ++c)
          images.data[i * 784 + r * 28 + c] = static_cast<std::uint8_t>(100 + 7 * (i % 13));
    }
    xgrad::data::write_idx(dir / (prefix + "-images-idx3-ubyte.gz"), images);
    xgrad::data::write_idx(dir / (prefix + "-labels-idx1-ubyte.gz"), labels);
  };
  write("train", n_train);
  write("t10k", n_test);
  return dir.string();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

#ifndef XGRAD_MPIRUN
// Without MPI in the build, --distributed is a usage error that says why (issue 16, item 5).
void expect_refused() {
  TempDir dir;
  Run r = run_train("--distributed --data " + make_dataset(fs::path(dir.path), 20, 10));
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("--distributed: this xgrad-train was built without MPI support") !=
                 std::string::npos,
             r.err);
  BOOST_TEST(r.out.empty());  // nothing trained
}
#else
Run run_mpi(const std::string& args) {
  return xgrad::testing::run_command(std::string("timeout 60 ") + XGRAD_MPIRUN + " " +
                                     XGRAD_TRAIN_BIN + " --distributed " + args);
}

// The loss column of a --log file.
std::vector<double> losses(const fs::path& csv) {
  std::istringstream in(xgrad::testing::slurp(csv));
  std::string line;
  std::getline(in, line);  // header
  std::vector<double> out;
  while (std::getline(in, line)) {
    std::istringstream row(line);
    std::string step, epoch, loss;
    std::getline(row, step, ',');
    std::getline(row, epoch, ',');
    std::getline(row, loss, ',');
    out.push_back(std::stod(loss));
  }
  return out;
}
#endif

}  // namespace

BOOST_AUTO_TEST_SUITE(distributed_cli)

// Each case checks what its build can do: the MPI behaviour, or (without MPI) the refusal.

BOOST_AUTO_TEST_CASE(two_processes_train_as_one_with_twice_the_batch) {
#ifndef XGRAD_MPIRUN
  expect_refused();
#else
  TempDir dir;
  const std::string data = make_dataset(fs::path(dir.path), 96, 30);
  const std::string common = " --data " + data + " --optim sgd --lr 0.1 --epochs 2 --seed 3";
  Run d = run_mpi("--batch-size 8 --log " + dir.path + "/d.csv" + common);
  BOOST_REQUIRE_MESSAGE(d.code == 0, d.err);
  BOOST_TEST(count(d.out, "distributed: 2 processes (MPI), batch size 8 each, 16 per step") == 1u);
  BOOST_TEST(count(d.out, "epoch 2 ") == 1u);  // only rank 0 prints
  Run s = run_train("--batch-size 16 --log " + dir.path + "/s.csv" + common);
  BOOST_REQUIRE_MESSAGE(s.code == 0, s.err);
  const auto ld = losses(fs::path(dir.path) / "d.csv"), ls = losses(fs::path(dir.path) / "s.csv");
  BOOST_REQUIRE(ld.size() == 12u);  // 2 epochs of 96 / 16 steps
  BOOST_REQUIRE(ls.size() == ld.size());
  for (std::size_t i = 0; i < ld.size(); ++i)
    BOOST_TEST(std::abs(ld[i] - ls[i]) <= 1e-4 * std::max(1.0, std::abs(ls[i])), "step " << i + 1);
  // The same test accuracy, evaluated in two shards.
  auto accuracy = [](const std::string& out) {
    const auto p = out.rfind("test accuracy ");
    return p == std::string::npos ? -1.0 : std::stod(out.substr(p + 14));
  };
  BOOST_TEST(accuracy(d.out) == accuracy(s.out));
  BOOST_TEST(accuracy(d.out) >= 0.0);
#endif
}

BOOST_AUTO_TEST_CASE(resume_needs_the_same_number_of_processes) {
#ifndef XGRAD_MPIRUN
  expect_refused();
#else
  TempDir dir;
  const std::string data = make_dataset(fs::path(dir.path), 64, 20);
  const std::string ck = dir.path + "/ck.safetensors";
  const std::string common = " --data " + data + " --batch-size 8 --seed 5 --save " + ck;
  Run a = run_mpi("--epochs 1" + common);
  BOOST_REQUIRE_MESSAGE(a.code == 0, a.err);
  BOOST_TEST(fs::exists(ck));
  Run alone = run_train("--epochs 2 --resume " + ck + common);
  BOOST_TEST(alone.code == 2);
  BOOST_TEST(
      alone.err.find("written by a run on 2 process(es), this run has 1") != std::string::npos,
      alone.err);
  Run b = run_mpi("--epochs 2 --resume " + ck + common);
  BOOST_TEST(b.code == 0, b.err);
  BOOST_TEST(count(b.out, "resumed from") == 1u);
  BOOST_TEST(count(b.out, "epoch 2 ") == 1u);
#endif
}

BOOST_AUTO_TEST_CASE(an_error_on_the_ranks_ends_the_job_with_its_code) {
#ifndef XGRAD_MPIRUN
  expect_refused();
#else
  Run r = run_mpi("--data /nonexistent/folder");
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("of 2: ") != std::string::npos, r.err);  // names the rank
  BOOST_TEST(r.err.find("/nonexistent/folder") != std::string::npos, r.err);
#endif
}

BOOST_AUTO_TEST_CASE(distributed_without_mpirun_is_a_world_of_one_or_refused) {
#ifndef XGRAD_MPIRUN
  expect_refused();
#else
  TempDir dir;
  Run r =
      run_train("--distributed --batch-size 8 --data " + make_dataset(fs::path(dir.path), 24, 10));
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(r.out.find("distributed: 1 process (MPI), batch size 8 each, 8 per step") !=
                 std::string::npos,
             r.out);
  BOOST_TEST(r.out.find("done: 3 steps") != std::string::npos, r.out);
#endif
}

BOOST_AUTO_TEST_SUITE_END()
