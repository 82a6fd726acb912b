// The bad-input table: one test per class of malformed file the readers refuse — IDX files
// (plain and gzip, the gzip bomb among them), MNIST-style datasets, safetensors files and
// checkpoints. Each load runs in a forked child; the test checks that it throws xgrad::Error
// whose message names the file and the problem, and that its peak memory stays under 64 MiB.
#include <cmath>
#include <filesystem>
#include <limits>

#include "bad_input_util.hpp"
#include "process_util.hpp"
#include "xgrad/data/dataset.hpp"
#include "xgrad/data/idx.hpp"
#include "xgrad/io/checkpoint.hpp"
#include "xgrad/io/safetensors.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/optim/adam.hpp"

using namespace xgrad;
using namespace xgrad::testing;
namespace fs = std::filesystem;

namespace {

const std::string kImages = "train-images-idx3-ubyte";
const std::string kLabels = "train-labels-idx1-ubyte";

std::string idx_header(std::uint32_t magic, const std::vector<std::uint32_t>& dims) {
  std::string h = be32(magic);
  for (std::uint32_t d : dims) h += be32(d);
  return h;
}

// A valid pair of MNIST-style files of n 2x2 images, labels given.
void write_mnist(const fs::path& dir, const std::vector<std::uint8_t>& labels) {
  const auto n = static_cast<std::int64_t>(labels.size());
  data::write_idx(dir / (kImages + ".gz"),
                  {{n, 2, 2}, std::vector<std::uint8_t>(static_cast<std::size_t>(n) * 4, 9)});
  data::write_idx(dir / (kLabels + ".gz"), {{n}, labels});
}

// A model and optimizer after one step, and a valid checkpoint of them at `path`.
struct Trained {
  nn::MLP model{(manual_seed(5), std::vector<std::int64_t>{4, 3, 2})};
  optim::Adam opt{model.parameters(), optim::AdamOptions(1e-2)};
  explicit Trained(const fs::path& path) {
    opt.zero_grad();
    cross_entropy(model(randn({5, 4})), tensor({0., 1., 1., 0., 1.}, Dtype::int64)).backward();
    opt.step();
    io::save_checkpoint(path.string(), model, opt, {.rng = false});
  }
  void load(const fs::path& path) {
    io::load_checkpoint(path.string(), model, opt, {.rng = false});
  }
};

// Rewrites the checkpoint at `path` with metadata `key` set to `value`.
void set_metadata(const fs::path& path, const std::string& key, const std::string& value) {
  auto [tensors, meta] = io::load_safetensors(path.string());
  BOOST_REQUIRE(meta.count(key) == 1);
  meta[key] = value;
  io::save_safetensors(path.string(), tensors, meta);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bad_input)

BOOST_AUTO_TEST_CASE(the_memory_measurement_sees_a_big_allocation) {
  // The 64 MiB checks below can fail: a child that touches 100 MiB is measured as such.
  const ChildLoad r = load_in_child([] {
    std::vector<char> big(std::size_t{100} << 20, 1);
    if (big[12345] != 1) throw Error("unexpected");
    throw Error("done");
  });
  BOOST_TEST(r.outcome == ChildLoad::threw_error);
  BOOST_TEST(r.message == "done");
  BOOST_TEST(r.max_rss_bytes > (std::int64_t{100} << 20));
  BOOST_TEST(r.load_rss_bytes() > (std::int64_t{100} << 20));
  BOOST_TEST(r.start_rss_bytes > 0);
}

BOOST_AUTO_TEST_CASE(idx_reader_peak_memory_is_the_data_it_holds) {
  // A valid 48 MiB image file: read straight into its final buffer, the reader's peak stays
  // near 48 MiB (growing a vector in steps would peak near twice that).
  TempDir t;
  const fs::path f = fs::path(t.path) / (kImages + ".gz");
  const std::uint32_t n = 64198;  // 64198 * 784 bytes = 48 MiB
  {
    std::string body = idx_header(0x803, {n, 28, 28});
    body.resize(body.size() + std::size_t{n} * 784, '\7');
    write_file(f, gzip_member(body));
  }  // freed before the fork: the child's peak must be its own
  const ChildLoad r = load_in_child([&] {
    const data::IdxArray a = data::read_idx(f, 3);
    if (a.data.size() != std::size_t{n} * 784 || a.data.back() != 7) throw Error("wrong data");
  });
  BOOST_TEST(r.outcome == ChildLoad::returned, r.message);
  BOOST_TEST_MESSAGE("peak RSS " << (r.max_rss_bytes >> 10) << " KiB, the load "
                                 << (r.load_rss_bytes() >> 10) << " KiB");
  const std::int64_t data = std::int64_t{n} * 784;
  // AddressSanitizer adds its shadow (1/8) and allocator bookkeeping.
  const std::int64_t slack = (kUnderAsan ? data / 8 : 0) + (std::int64_t{12} << 20);
  BOOST_TEST(r.load_rss_bytes() > data);
  BOOST_TEST(r.load_rss_bytes() < data + slack,
             "the load took " << (r.load_rss_bytes() >> 20) << " MiB for 48 MiB of data");
}

// ---- IDX files ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(gzip_bomb_is_refused_fast_and_small) {
  // 2 MiB of gzip inflating to 2 GiB of zeros, the header claiming 2^31 - 1 images of 28x28.
  TempDir t;
  write_mnist(t.path, {1});  // the labels file for the dataset check below
  const fs::path f = fs::path(t.path) / (kImages + ".gz");
  const std::uint64_t size = write_gzip_bomb(f, idx_header(0x803, {0x7FFFFFFF, 28, 28}), 2);
  BOOST_TEST(size > (1u << 20));
  BOOST_TEST(size < (3u << 20));
  const std::uint64_t claimed = 16 + std::uint64_t{0x7FFFFFFF} * 784;
  expect_refused([&] { data::read_idx(f, 3); },
                 {f.string(), "claims " + std::to_string(claimed) + " bytes",
                  "gzip file of " + std::to_string(size) + " bytes",
                  "can hold at most " + std::to_string(size * 1032), "gzip bomb"},
                 1.0);
  // Through the dataset, the same refusal.
  expect_refused([&] { data::MnistDataset(t.path, data::Split::train); },
                 {f.string(), "can hold at most"}, 1.0);
}

BOOST_AUTO_TEST_CASE(gzip_bomb_in_trailing_bytes_is_refused_fast_and_small) {
  // A correct header and data for 1 image, then 1 GiB of zeros.
  TempDir t;
  const fs::path f = fs::path(t.path) / (kImages + ".gz");
  write_gzip_bomb(f, idx_header(0x803, {1, 2, 2}) + std::string(4, '\1'), 1);
  expect_refused([&] { data::read_idx(f, 3); },
                 {f.string(), "more than 1048576 trailing bytes", "after the 20 bytes"}, 1.0);
}

BOOST_AUTO_TEST_CASE(idx_header_claiming_more_than_a_plain_file_holds) {
  TempDir t;
  const fs::path f = fs::path(t.path) / kImages;
  write_file(f, idx_header(0x803, {0x7FFFFFFF, 28, 28}) + std::string(100, '\0'));
  expect_refused(
      [&] { data::read_idx(f, 3); },
      {f.string(), "is truncated",
       "expected " + std::to_string(16 + std::uint64_t{0x7FFFFFFF} * 784) + " bytes", "got 116"});
}

BOOST_AUTO_TEST_CASE(idx_bad_magic) {
  TempDir t;
  const fs::path f = fs::path(t.path) / kImages;
  write_file(f, "<html>not an idx file</html>");
  expect_refused([&] { data::read_idx(f, 3); },
                 {f.string(), "wrong magic number", "expected 0x00000803", "found 0x3C68746D"});
}

BOOST_AUTO_TEST_CASE(idx_unsupported_element_type) {
  TempDir t;
  const fs::path f = fs::path(t.path) / kImages;
  write_file(f, idx_header(0xD03, {1, 1, 1}) + std::string(4, '\0'));
  expect_refused([&] { data::read_idx(f, 3); },
                 {f.string(), "unsupported element type 0x0D (float32)"});
}

BOOST_AUTO_TEST_CASE(idx_negative_dimension) {
  TempDir t;
  const fs::path f = fs::path(t.path) / kImages;
  write_file(f, idx_header(0x803, {2, 0xFFFFFFFF, 3}));
  expect_refused([&] { data::read_idx(f, 3); }, {f.string(), "negative dimension -1 at index 1"});
}

BOOST_AUTO_TEST_CASE(idx_truncated_header) {
  TempDir t;
  const fs::path f = fs::path(t.path) / kImages;
  write_file(f, idx_header(0x803, {2, 3}));
  expect_refused([&] { data::read_idx(f, 3); },
                 {f.string(), "is truncated", "expected 16 bytes", "got 12", "header"});
}

BOOST_AUTO_TEST_CASE(idx_truncated_gzip_stream) {
  TempDir t;
  const fs::path f = fs::path(t.path) / (kImages + ".gz");
  std::string pixels(7840, '\0');
  std::uint32_t noise = 12345;  // incompressible pixels: half the file is half the data
  for (char& p : pixels) p = static_cast<char>((noise = noise * 1664525u + 1013904223u) >> 24);
  const std::string whole = gzip_member(idx_header(0x803, {10, 28, 28}) + pixels);
  write_file(f, whole.substr(0, whole.size() / 2));
  expect_refused([&] { data::read_idx(f, 3); }, {f.string(), "is truncated", "expected 7856 bytes",
                                                 "the gzip stream itself ends early"});
}

BOOST_AUTO_TEST_CASE(idx_corrupt_gzip_data) {
  TempDir t;
  const fs::path f = fs::path(t.path) / (kImages + ".gz");
  std::string bytes = gzip_member(idx_header(0x803, {10, 28, 28}) + std::string(7840, '\x55'));
  for (std::size_t i = 12; i < bytes.size() - 8; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5A);
  write_file(f, bytes);
  expect_refused([&] { data::read_idx(f, 3); }, {f.string(), "corrupt gzip data"});
}

BOOST_AUTO_TEST_CASE(idx_trailing_bytes) {
  TempDir t;
  const fs::path f = fs::path(t.path) / kLabels;
  write_file(f, idx_header(0x801, {3}) + "abcdef");
  expect_refused([&] { data::read_idx(f, 1); },
                 {f.string(), "3 trailing bytes", "after the 11 bytes"});
}

// ---- MNIST-style datasets -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(dataset_label_at_or_above_the_class_count) {
  TempDir t;
  write_mnist(t.path, {0, 9, 3, 10, 4});
  const std::string labels = (fs::path(t.path) / (kLabels + ".gz")).string();
  expect_refused(
      [&] { data::MnistDataset(t.path, data::Split::train); },
      {"MnistDataset", labels, "label 10", "position 3", "10 classes", "labels must be 0..9"});
  write_mnist(t.path, {0, 1, 255});
  expect_refused([&] { data::MnistDataset(t.path, data::Split::train); },
                 {labels, "label 255", "position 2", "10 classes"});
  // With an explicit class count, 3 is already too many.
  write_mnist(t.path, {0, 2, 1, 3});
  expect_refused([&] { data::MnistDataset(t.path, data::Split::train, 3); },
                 {labels, "label 3", "position 3", "3 classes", "labels must be 0..2"});
}

BOOST_AUTO_TEST_CASE(dataset_without_images) {
  TempDir t;
  write_mnist(t.path, {});
  const std::string images = (fs::path(t.path) / (kImages + ".gz")).string();
  expect_refused([&] { data::MnistDataset(t.path, data::Split::train); },
                 {"MnistDataset", images, "holds no images", "[0,2,2]"});
}

BOOST_AUTO_TEST_CASE(dataset_label_count_differs_from_image_count) {
  TempDir t;
  write_mnist(t.path, {1, 2, 3});
  data::write_idx(fs::path(t.path) / (kLabels + ".gz"), {{2}, {1, 2}});
  expect_refused([&] { data::MnistDataset(t.path, data::Split::train); },
                 {"label count disagrees with image count", "holds 2 labels", "holds 3 images"});
}

// ---- safetensors files ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(safetensors_overlapping_offsets) {
  TempDir t;
  const fs::path f = fs::path(t.path) / "model.safetensors";
  // fc1.weight (4 floats) lies over fc1.bias (2 floats): bytes 8..16 would be shared.
  write_file(
      f, safetensors_bytes(R"({"fc1.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("fc1.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[4,20]}})",
                           std::string(20, '\0')));
  expect_refused([&] { io::load_safetensors(f.string()); },
                 {f.string(), "tensors 'fc1.bias' [0, 8) and 'fc1.weight' [4, 20) overlap"});
}

BOOST_AUTO_TEST_CASE(safetensors_duplicate_tensor_name) {
  TempDir t;
  const fs::path f = fs::path(t.path) / "model.safetensors";
  write_file(f,
             safetensors_bytes(R"({"fc1.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                               R"("fc1.weight":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                               std::string(8, '\0')));
  expect_refused([&] { io::load_safetensors(f.string()); },
                 {f.string(), "two tensors named 'fc1.weight'", "duplicate name"});
  // A key twice inside an entry, and in the metadata.
  write_file(f, safetensors_bytes(
                    R"({"w":{"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]}})",
                    std::string(4, '\0')));
  expect_refused([&] { io::load_safetensors(f.string()); },
                 {f.string(), "entry 'w' holds the key 'dtype' twice"});
  write_file(f, safetensors_bytes(R"({"__metadata__":{"epoch":"1","epoch":"2"}})", ""));
  expect_refused([&] { io::load_safetensors_metadata(f.string()); },
                 {f.string(), "entry '__metadata__' holds the key 'epoch' twice"});
}

BOOST_AUTO_TEST_CASE(safetensors_hole_in_the_data_section) {
  TempDir t;
  const fs::path f = fs::path(t.path) / "model.safetensors";
  write_file(f, safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                  std::string(12, '\0')));
  expect_refused([&] { io::load_safetensors(f.string()); },
                 {f.string(), "bytes [4, 8) of the data section belong to no tensor",
                  "hole between 'a' and 'b'"});
  write_file(f, safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                  std::string(8, '\0')));
  expect_refused([&] { io::load_safetensors(f.string()); },
                 {f.string(), "bytes [0, 4)", "hole before 'a'"});
  write_file(f, safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                  std::string(4096, '\0')));
  expect_refused([&] { io::load_safetensors(f.string()); },
                 {f.string(), "bytes [4, 4096)", "hole after 'a'"});
}

BOOST_AUTO_TEST_CASE(safetensors_offsets_outside_the_data_or_not_matching_the_shape) {
  TempDir t;
  const fs::path f = fs::path(t.path) / "model.safetensors";
  write_file(
      f, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,1099511627776]}})",
                           std::string(16, '\0')));
  expect_refused([&] { io::load_safetensors(f.string()); },
                 {f.string(), "tensor 'w'", "out of range", "holds 16 bytes"});
  write_file(f, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4,1024],"data_offsets":[0,16]}})",
                                  std::string(16, '\0')));
  expect_refused([&] { io::load_safetensors(f.string()); },
                 {f.string(), "tensor 'w'", "hold 16 bytes", "needs 16384"});
}

BOOST_AUTO_TEST_CASE(safetensors_header_length_beyond_the_file) {
  TempDir t;
  const fs::path f = fs::path(t.path) / "model.safetensors";
  write_file(f, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}");
  expect_refused([&] { io::load_safetensors(f.string()); },
                 {f.string(), "header length 9223372036854775807 goes beyond the end of the file",
                  "10 bytes"});
  write_file(f, "abc");
  expect_refused([&] { io::load_safetensors(f.string()); }, {f.string(), "is truncated"});
}

BOOST_AUTO_TEST_CASE(safetensors_bad_json_and_dtype) {
  TempDir t;
  const fs::path f = fs::path(t.path) / "model.safetensors";
  write_file(f, safetensors_bytes(R"({"w":{"dtype":"F32",)", ""));
  expect_refused([&] { io::load_safetensors(f.string()); }, {f.string(), "bad JSON header"});
  write_file(f, safetensors_bytes(R"({"w":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})",
                                  std::string(2, '\0')));
  expect_refused([&] { io::load_safetensors(f.string()); }, {f.string(), "unknown dtype \"F16\""});
}

// ---- checkpoints ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(checkpoint_step_nan_negative_or_fractional) {
  TempDir t;
  const fs::path f = fs::path(t.path) / "ckpt.safetensors";
  Trained tr(f);
  set_metadata(f, "optimizer.state.0.step", "nan");
  expect_refused([&] { tr.load(f); },
                 {f.string(), "optimizer step 'optimizer.state.0.step' is nan"});
  set_metadata(f, "optimizer.state.0.step", "-5");
  expect_refused([&] { tr.load(f); },
                 {f.string(), "optimizer step 'optimizer.state.0.step' is negative (-5)"});
  set_metadata(f, "optimizer.state.0.step", "2.5");
  expect_refused([&] { tr.load(f); }, {f.string(), "= 2.5 is not a whole number"});
  set_metadata(f, "optimizer.state.0.step", "inf");
  expect_refused([&] { tr.load(f); }, {f.string(), "= inf is not a whole number"});
  set_metadata(f, "optimizer.state.0.step", "1");
  tr.load(f);  // the repaired file loads
}

BOOST_AUTO_TEST_CASE(checkpoint_learning_rate_not_finite_or_negative) {
  TempDir t;
  const fs::path f = fs::path(t.path) / "ckpt.safetensors";
  Trained tr(f);
  set_metadata(f, "optimizer.param_groups.0.lr", "inf");
  expect_refused(
      [&] { tr.load(f); },
      {f.string(), "learning rate 'optimizer.param_groups.0.lr' is inf", "must be finite"});
  set_metadata(f, "optimizer.param_groups.0.lr", "nan");
  expect_refused([&] { tr.load(f); }, {"learning rate 'optimizer.param_groups.0.lr' is nan"});
  set_metadata(f, "optimizer.param_groups.0.lr", "-0.1");
  expect_refused([&] { tr.load(f); },
                 {"learning rate 'optimizer.param_groups.0.lr' is negative (-0.1)"});
  set_metadata(f, "optimizer.param_groups.0.beta2", "-inf");
  set_metadata(f, "optimizer.param_groups.0.lr", "0.01");
  expect_refused([&] { tr.load(f); },
                 {"optimizer hyperparameter 'optimizer.param_groups.0.beta2' is -inf"});
}

BOOST_AUTO_TEST_CASE(checkpoint_non_finite_weight_or_state) {
  TempDir t;
  const fs::path f = fs::path(t.path) / "ckpt.safetensors";
  Trained tr(f);
  auto [tensors, meta] = io::load_safetensors(f.string());
  Tensor w = tensors.at("fc2.weight").clone();
  w.data_ptr<float>()[4] = std::numeric_limits<float>::quiet_NaN();
  auto bad = tensors;
  bad["fc2.weight"] = w;
  io::save_safetensors(f.string(), bad, meta);
  const Tensor before = tr.model.named_parameters()[0].second.clone();
  expect_refused([&] { tr.load(f); }, {f.string(), "tensor 'fc2.weight' holds a non-finite value",
                                       "nan at flat index 4 of shape [2,3]"});
  Tensor s = tensors.at("optimizer.state.1.exp_avg_sq").clone();
  s.data_ptr<float>()[0] = std::numeric_limits<float>::infinity();
  bad = tensors;
  bad["optimizer.state.1.exp_avg_sq"] = s;
  io::save_safetensors(f.string(), bad, meta);
  expect_refused([&] { tr.load(f); },
                 {"tensor 'optimizer.state.1.exp_avg_sq' holds a non-finite value (inf at flat "
                  "index 0"});
  // In this process too, nothing was changed by the refused load.
  BOOST_CHECK_THROW(tr.load(f), Error);
  BOOST_TEST(values_of(tr.model.named_parameters()[0].second) == values_of(before),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(checkpoint_that_is_not_a_checkpoint) {
  TempDir t;
  const fs::path f = fs::path(t.path) / "ckpt.safetensors";
  Trained tr(f);
  io::save_safetensors(f.string(), {{"x", zeros({2})}});
  expect_refused([&] { tr.load(f); }, {f.string(), "is not an xgrad checkpoint"});
  write_file(f, "");
  expect_refused([&] { tr.load(f); }, {f.string(), "is truncated"});
}

BOOST_AUTO_TEST_SUITE_END()
