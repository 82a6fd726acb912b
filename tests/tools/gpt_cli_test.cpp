// xgrad-train --model gpt end to end on a tiny corpus and a tiny model: it learns (validation
// loss well below the uniform log V), samples text in the corpus's characters, stores the
// vocabulary in its checkpoint, samples from the checkpoint, and a run resumed from it gives the
// uninterrupted run's numbers.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "process_util.hpp"
#include "test_util.hpp"
#include "xgrad/io/safetensors.hpp"

namespace fs = std::filesystem;
using xgrad::testing::Run;

namespace {

const char* const kText = "the cat sat on the mat. the dog sat on the log.\n";
const std::string kTiny =
    " --model gpt --n-layer 1 --n-head 2 --n-embd 16 --block-size 16 --batch-size 8 --lr 1e-2 "
    "--eval-interval 15 --eval-blocks 16 --seed 3";

fs::path corpus() {
  const fs::path p = xgrad::testing::temp_path("xgrad_gpt_corpus.txt");
  std::ofstream out(p);
  for (int i = 0; i < 80; ++i) out << kText;
  return p;
}

Run run_train(const std::string& args) {
  return xgrad::testing::run_command(std::string(XGRAD_TRAIN_BIN) + " " + args);
}

// The validation losses the run printed, in order.
std::vector<double> val_losses(const std::string& out) {
  std::vector<double> v;
  const std::regex re("val loss ([0-9.]+) nats/char \\(([0-9.]+) bits/char\\)");
  for (std::sregex_iterator it(out.begin(), out.end(), re), end; it != end; ++it) {
    const double nats = std::stod((*it)[1]), bits = std::stod((*it)[2]);
    BOOST_TEST(std::abs(bits - nats / std::log(2.0)) < 1e-3);
    v.push_back(nats);
  }
  return v;
}

// The text after the "sample (...):" line.
std::string sample_of(const std::string& out) {
  const auto at = out.find("sample (");
  BOOST_REQUIRE(at != std::string::npos);
  const auto nl = out.find('\n', at);
  return out.substr(nl + 1);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gpt_cli)

BOOST_AUTO_TEST_CASE(learns_samples_and_resumes_from_its_checkpoint) {
  const fs::path data = corpus();
  const fs::path ckpt = xgrad::testing::temp_path("xgrad_gpt.safetensors");
  const fs::path half = xgrad::testing::temp_path("xgrad_gpt_half.safetensors");
  const std::string base = kTiny + " --data " + data.string();

  const Run full = run_train(base + " --max-steps 30 --sample 40 --save " + ckpt.string());
  BOOST_REQUIRE_MESSAGE(full.code == 0, full.err);
  const auto losses = val_losses(full.out);
  BOOST_REQUIRE_EQUAL(losses.size(), 2u);  // steps 15 and 30
  // 15 distinct characters: a uniform guess is log 15 = 2.71 nats; the model learns the
  // sentence's structure.
  BOOST_TEST(full.out.find("(15 distinct)") != std::string::npos);
  BOOST_TEST(losses[1] < 1.6);
  BOOST_TEST(losses[1] < losses[0]);
  const std::string text = kText;
  const std::set<char> chars(text.begin(), text.end());
  std::string s = sample_of(full.out);
  BOOST_TEST(s.size() == 41u);  // 40 characters and the closing newline
  for (char c : s) BOOST_TEST(chars.count(c) == 1u);

  // The vocabulary is in the checkpoint: sampling from it alone decodes the same characters.
  const auto meta = xgrad::io::load_safetensors_metadata(ckpt.string());
  BOOST_TEST(meta.at("gpt.vocab") == "0a202e6163646567686c6d6e6f7374");
  const Run again = run_train(base + " --resume " + ckpt.string() + " --sample 25");
  BOOST_REQUIRE_MESSAGE(again.code == 0, again.err);
  BOOST_TEST(again.out.find("nothing to train") != std::string::npos);
  BOOST_TEST(std::abs(val_losses(again.out).at(0) - losses[1]) < 1e-4);
  s = sample_of(again.out);
  BOOST_TEST(s.size() == 26u);
  for (char c : s) BOOST_TEST(chars.count(c) == 1u);

  // 15 steps, then 15 more from the checkpoint: the uninterrupted run's losses.
  const Run first = run_train(base + " --max-steps 15 --save " + half.string());
  BOOST_REQUIRE_MESSAGE(first.code == 0, first.err);
  const Run second = run_train(base + " --max-steps 30 --resume " + half.string());
  BOOST_REQUIRE_MESSAGE(second.code == 0, second.err);
  BOOST_TEST(val_losses(first.out).at(0) == losses[0]);
  BOOST_TEST(val_losses(second.out).at(0) == losses[1]);
  fs::remove(data);
  fs::remove(ckpt);
  fs::remove(half);
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused) {
  const fs::path data = corpus();
  const std::string base = kTiny + " --data " + data.string() + " --max-steps 1";
  Run r = run_train(base + " --temperature 0 --sample 5");
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("invalid --temperature 0") != std::string::npos, r.err);
  r = run_train(base + " --scheduler step");
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("--scheduler does not apply to --model gpt") != std::string::npos, r.err);
  r = run_train(" --model gpt --max-steps 1 --n-embd 15 --data " + data.string());
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("not divisible by n_head") != std::string::npos, r.err);
  r = run_train(std::string(" --model gpt --max-steps 1 --data ") + data.string() + ".missing");
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("does not exist") != std::string::npos, r.err);
  fs::remove(data);
}

BOOST_AUTO_TEST_SUITE_END()
