// MnistDataset on synthetic IDX files (and on the real Fashion-MNIST when installed), and
// TensorDataset.
#include "xgrad/data/dataset.hpp"

#include <algorithm>
#include <array>

#include "data_test_util.hpp"
#include "test_util.hpp"
#include "xgrad/data/idx.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using xgrad::data::Batch;
using xgrad::data::IdxArray;
using xgrad::data::MnistDataset;
using xgrad::data::Split;
using xgrad::data::TensorDataset;

namespace {

const char* const kFashionMnist = "/usr/share/datasets/fashion-mnist";

/// Writes an MNIST-style pair of files `prefix`-images-idx3-ubyte / -labels-idx1-ubyte
/// (suffixed with ".gz" and compressed when gz) holding n images of 3x2 pixels.
void write_split(const TempDir& dir, const std::string& prefix, std::int64_t n,
                 std::int64_t n_labels, unsigned offset, bool gz) {
  const std::string ext = gz ? ".gz" : "";
  data::write_idx(dir / (prefix + "-images-idx3-ubyte" + ext),
                  IdxArray{{n, 3, 2}, pattern(static_cast<std::size_t>(n * 6), offset)});
  std::vector<std::uint8_t> labels(static_cast<std::size_t>(n_labels));
  for (std::size_t i = 0; i < labels.size(); ++i)
    labels[i] = static_cast<std::uint8_t>((i + offset) % 10);
  data::write_idx(dir / (prefix + "-labels-idx1-ubyte" + ext), IdxArray{{n_labels}, labels});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dataset)

BOOST_AUTO_TEST_CASE(mnist_loads_both_splits_and_makes_scaled_batches) {
  TempDir dir;
  write_split(dir, "train", 5, 5, 0, true);  // gzip
  write_split(dir, "t10k", 2, 2, 1, false);  // plain
  MnistDataset train(dir.path(), Split::train);
  BOOST_TEST(train.size() == 5);
  BOOST_TEST(train.rows() == 3);
  BOOST_TEST(train.cols() == 2);
  BOOST_TEST(train.raw_images() == pattern(30), boost::test_tools::per_element());

  const std::array<std::int64_t, 3> idx{4, 0, 4};
  Batch b = train.get_batch(idx);
  BOOST_TEST(b.inputs.dtype() == Dtype::float32);
  BOOST_TEST(b.labels.dtype() == Dtype::int64);
  BOOST_TEST(!b.inputs.requires_grad());
  std::vector<double> want;
  for (std::int64_t s : idx)
    for (std::int64_t j = 0; j < 6; ++j)
      want.push_back(static_cast<float>(pattern(30)[static_cast<std::size_t>(s * 6 + j)]) / 255.0f);
  expect_values(b.inputs, {3, 6}, want, 0.0);
  expect_values(b.labels, {3}, {4, 0, 4}, 0.0);

  Batch one = train.get(1);
  expect_values(one.labels, {1}, {1}, 0.0);
  BOOST_TEST(one.inputs.shape() == (Shape{1, 6}), boost::test_tools::per_element());

  MnistDataset test(dir.path(), Split::test);
  BOOST_TEST(test.size() == 2);
  expect_values(test.get_batch(std::vector<std::int64_t>{1, 0}).labels, {2}, {2, 1}, 0.0);
}

BOOST_AUTO_TEST_CASE(mnist_pixels_scale_to_unit_interval) {
  TempDir dir;
  std::vector<std::uint8_t> px{0, 1, 127, 128, 254, 255};
  data::write_idx(dir / "im", IdxArray{{1, 2, 3}, px});
  data::write_idx(dir / "lb", IdxArray{{1}, {3}});
  MnistDataset d(dir / "im", dir / "lb");
  Batch b = d.get(0);
  const float* x = b.inputs.data_ptr<float>();
  for (std::size_t i = 0; i < px.size(); ++i)
    BOOST_TEST(x[i] == static_cast<float>(px[i]) / 255.0f);
  BOOST_TEST(x[0] == 0.0f);
  BOOST_TEST(x[5] == 1.0f);
}

BOOST_AUTO_TEST_CASE(mnist_prefers_gz_over_plain) {
  TempDir dir;
  write_split(dir, "train", 4, 4, 0, false);
  write_split(dir, "train", 3, 3, 0, true);
  BOOST_TEST(MnistDataset(dir.path(), Split::train).size() == 3);
  BOOST_TEST(MnistDataset::resolve_file(dir.path(), "train-images-idx3-ubyte").filename() ==
             "train-images-idx3-ubyte.gz");
}

BOOST_AUTO_TEST_CASE(mnist_rejects_label_count_disagreeing_with_image_count) {
  TempDir dir;
  write_split(dir, "train", 5, 4, 0, true);
  expect_error(
      [&] { MnistDataset(dir.path(), Split::train); },
      {"MnistDataset", "label count disagrees with image count",
       "train-labels-idx1-ubyte.gz' holds 4 labels", "train-images-idx3-ubyte.gz' holds 5 images"});
}

BOOST_AUTO_TEST_CASE(mnist_rejects_missing_and_swapped_files) {
  TempDir dir;
  expect_error(
      [&] { MnistDataset(dir.path(), Split::test); },
      {"MnistDataset: found neither", "t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte'"});
  write_split(dir, "t10k", 2, 2, 0, false);
  // Labels where images belong: the IDX reader names the file and both magic numbers.
  expect_error(
      [&] { MnistDataset(dir / "t10k-labels-idx1-ubyte", dir / "t10k-labels-idx1-ubyte"); },
      {"wrong magic number", "expected 0x00000803", "found 0x00000801"});
}

BOOST_AUTO_TEST_CASE(mnist_class_count_is_explicit) {
  TempDir dir;
  write_split(dir, "train", 12, 12, 0, false);  // labels 0..9, 0, 1
  MnistDataset d(dir.path(), Split::train);
  BOOST_TEST(d.num_classes() == 10);
  BOOST_TEST(data::kMnistClasses == 10);
  // A larger class count accepts the same labels; the highest label 9 needs at least 10.
  BOOST_TEST(MnistDataset(dir.path(), Split::train, 256).num_classes() == 256);
  expect_error([&] { MnistDataset(dir.path(), Split::train, 9); },
               {"MnistDataset", "train-labels-idx1-ubyte'", "has label 9 at position 9",
                "9 classes", "labels must be 0..8"});
  expect_error([&] { MnistDataset(dir.path(), Split::train, 0); },
               {"MnistDataset", "class count must be in 1..256", "got 0"});
  expect_error([&] { MnistDataset(dir.path(), Split::train, 257); }, {"got 257"});
}

BOOST_AUTO_TEST_CASE(mnist_rejects_an_empty_split) {
  TempDir dir;
  write_split(dir, "t10k", 0, 0, 0, true);
  expect_error([&] { MnistDataset(dir.path(), Split::test); },
               {"MnistDataset", "t10k-images-idx3-ubyte.gz' holds no images", "[0,3,2]"});
}

BOOST_AUTO_TEST_CASE(mnist_rejects_index_out_of_range) {
  TempDir dir;
  write_split(dir, "train", 3, 3, 0, false);
  MnistDataset d(dir.path(), Split::train);
  expect_error([&] { d.get(3); },
               {"MnistDataset::get_batch", "index 3 is out of range", "3 samples"});
  expect_error([&] { d.get(-1); }, {"index -1 is out of range"});
}

BOOST_AUTO_TEST_CASE(tensor_dataset_gathers_rows) {
  Tensor x = arange(0.0, 24.0, 1.0, Dtype::float64).reshape({4, 2, 3});
  Tensor y = tensor({3., 1., 4., 1.}, Dtype::int64);
  TensorDataset d(x, y);
  BOOST_TEST(d.size() == 4);
  Batch b = d.get_batch(std::vector<std::int64_t>{2, 0});
  std::vector<double> want;
  for (int s : {2, 0})
    for (int j = 0; j < 6; ++j) want.push_back(s * 6 + j);
  expect_values(b.inputs, {2, 2, 3}, want, 0.0);
  BOOST_TEST(b.labels.dtype() == Dtype::int64);
  expect_values(b.labels, {2}, {4, 3}, 0.0);
  // An empty batch keeps the trailing shape.
  Batch e = d.get_batch({});
  BOOST_TEST(e.inputs.shape() == (Shape{0, 2, 3}), boost::test_tools::per_element());
  // A non-contiguous input (a transpose) is gathered by logical rows.
  Tensor xt = arange(0.0, 6.0, 1.0, Dtype::float32).reshape({2, 3}).t();  // [3, 2]
  TensorDataset dt(xt, arange(3.0, Dtype::int64));
  expect_values(dt.get(2).inputs, {1, 2}, {2, 5}, 0.0);
  // Inputs that require grad give batches that do not.
  TensorDataset dg(leaf({3, 2}), arange(3.0, Dtype::int64));
  BOOST_TEST(!dg.get(0).inputs.requires_grad());
}

BOOST_AUTO_TEST_CASE(tensor_dataset_rejects_bad_input) {
  expect_error(
      [] {
        TensorDataset(zeros({3, 2}), zeros({4}, Dtype::int64));
      },
      {"TensorDataset", "hold 3 samples but labels [4] hold 4"});
  expect_error([] { TensorDataset(scalar_tensor(1.0), zeros({1})); }, {"sample axis"});
  expect_error([] { TensorDataset(Tensor(), zeros({1})); }, {"must be defined"});
  TensorDataset d(zeros({3, 2}), zeros({3}, Dtype::int64));
  expect_error([&] { d.get(5); }, {"TensorDataset::get_batch", "index 5 is out of range"});
}

BOOST_AUTO_TEST_CASE(fashion_mnist_real_files) {
  if (!std::filesystem::exists(kFashionMnist)) {
    BOOST_WARN_MESSAGE(
        false, "skipped: " << kFashionMnist << " is absent (Debian package dataset-fashion-mnist)");
    return;
  }
  MnistDataset train(kFashionMnist, Split::train);
  BOOST_TEST(train.size() == 60000);
  BOOST_TEST(train.rows() == 28);
  BOOST_TEST(train.cols() == 28);
  BOOST_TEST(train.raw_images().size() == 60000u * 28u * 28u);
  std::array<std::int64_t, 10> per_class{};
  for (std::uint8_t l : train.raw_labels()) {
    BOOST_REQUIRE_LT(l, 10);
    ++per_class[l];
  }
  for (std::int64_t c : per_class) BOOST_TEST(c == 6000);  // Fashion-MNIST is balanced

  Batch b = train.get_batch(std::vector<std::int64_t>{0, 59999});
  BOOST_TEST(b.inputs.shape() == (Shape{2, 784}), boost::test_tools::per_element());
  const float* x = b.inputs.data_ptr<float>();
  BOOST_TEST(*std::min_element(x, x + 2 * 784) >= 0.0f);
  BOOST_TEST(*std::max_element(x, x + 2 * 784) <= 1.0f);
  BOOST_TEST(*std::max_element(x, x + 784) > 0.0f);  // not a blank image

  MnistDataset test(kFashionMnist, Split::test);
  BOOST_TEST(test.size() == 10000);
}

BOOST_AUTO_TEST_SUITE_END()
