#include "xgrad/data/dataset.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "xgrad/data/idx.hpp"
#include "xgrad/error.hpp"

namespace xgrad::data {

namespace {

void check_index(std::int64_t index, std::int64_t size, const char* who) {
  if (index < 0 || index >= size)
    fail(who, ": index ", index, " is out of range for a dataset of ", size, " samples");
}

}  // namespace

// ---- MnistDataset -------------------------------------------------------------------------

std::filesystem::path MnistDataset::resolve_file(const std::filesystem::path& dir,
                                                 const std::string& name) {
  std::error_code ec;
  const std::filesystem::path gz = dir / (name + ".gz");
  if (std::filesystem::is_regular_file(gz, ec)) return gz;
  const std::filesystem::path plain = dir / name;
  if (std::filesystem::is_regular_file(plain, ec)) return plain;
  fail("MnistDataset: found neither '", gz.string(), "' nor '", plain.string(), "'");
}

MnistDataset::MnistDataset(const std::filesystem::path& dir, Split split, std::int64_t num_classes)
    : num_classes_(num_classes) {
  const char* prefix = split == Split::train ? "train" : "t10k";
  // Resolved in this order so a missing images file is the one reported.
  const auto images = resolve_file(dir, std::string(prefix) + "-images-idx3-ubyte");
  const auto labels = resolve_file(dir, std::string(prefix) + "-labels-idx1-ubyte");
  load(images, labels);
}

MnistDataset::MnistDataset(const std::filesystem::path& images_file,
                           const std::filesystem::path& labels_file, std::int64_t num_classes)
    : num_classes_(num_classes) {
  load(images_file, labels_file);
}

void MnistDataset::load(const std::filesystem::path& images_file,
                        const std::filesystem::path& labels_file) {
  if (num_classes_ < 1 || num_classes_ > 256)
    fail("MnistDataset: the class count must be in 1..256 (labels are bytes), got ", num_classes_);
  IdxArray images = read_idx(images_file, 3);
  IdxArray labels = read_idx(labels_file, 1);
  if (labels.dims[0] != images.dims[0])
    fail("MnistDataset: label count disagrees with image count: '", labels_file.string(),
         "' holds ", labels.dims[0], " labels but '", images_file.string(), "' holds ",
         images.dims[0], " images");
  if (images.dims[0] == 0)
    fail("MnistDataset: '", images_file.string(), "' holds no images (dims ", images.dims,
         "): an empty dataset cannot be trained on or evaluated");
  check_labels(labels.data, labels_file);
  count_ = images.dims[0];
  rows_ = images.dims[1];
  cols_ = images.dims[2];
  pixels_ = std::move(images.data);
  labels_ = std::move(labels.data);
}

void MnistDataset::check_labels(const std::vector<std::uint8_t>& labels,
                                const std::filesystem::path& labels_file) const {
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= num_classes_)
      fail("MnistDataset: '", labels_file.string(), "' has label ", int{labels[i]}, " at position ",
           i, ", but the dataset has ", num_classes_, " classes (labels must be 0..",
           num_classes_ - 1, ")");
}

Batch MnistDataset::get_batch(std::span<const std::int64_t> indices) const {
  const auto b = static_cast<std::int64_t>(indices.size());
  const std::int64_t pixels = rows_ * cols_;
  Batch out{empty({b, pixels}, Dtype::float32), empty({b}, Dtype::int64)};
  float* x = out.inputs.data_ptr<float>();
  std::int64_t* y = out.labels.data_ptr<std::int64_t>();
  // The rows of a shuffled batch lie anywhere in the images (47 MB for the training set):
  // the loop waited on memory for each row. It now fetches the row kAhead positions ahead
  // while converting this one; with the images on huge pages too (read_idx), the gather's
  // share of an MLP SGD step (batch 64, perf) fell from 6.6 % to 2.9 %.
  constexpr std::int64_t kAhead = 4;
  const auto prefetch_row = [&](std::int64_t i) {
    const std::int64_t s = indices[static_cast<std::size_t>(i)];
    if (s < 0 || s >= count_) return;  // reported by check_index when row i is reached
    const std::uint8_t* row = pixels_.data() + s * pixels;
    for (std::int64_t off = 0; off < pixels; off += 64) {
#if defined(__x86_64__) || defined(__i386__)
      // GCC 12 deletes a loop of __builtin_prefetch (no side effects, -ffinite-loops).
      asm volatile("prefetcht0 %0" : : "m"(row[off]));
#else
      __builtin_prefetch(row + off);
#endif
    }
  };
  for (std::int64_t i = 0; i < std::min(b, kAhead); ++i) prefetch_row(i);
  for (std::int64_t i = 0; i < b; ++i) {
    if (i + kAhead < b) prefetch_row(i + kAhead);
    const std::int64_t s = indices[static_cast<std::size_t>(i)];
    check_index(s, count_, "MnistDataset::get_batch");
    const std::uint8_t* src = pixels_.data() + s * pixels;
    float* dst = x + i * pixels;
    // Division, not multiplication by 1/255: rounds exactly as torch's ToTensor (x.float() / 255).
    for (std::int64_t j = 0; j < pixels; ++j) dst[j] = static_cast<float>(src[j]) / 255.0f;
    y[i] = labels_[static_cast<std::size_t>(s)];
  }
  return out;
}

// ---- TensorDataset ------------------------------------------------------------------------

TensorDataset::TensorDataset(Tensor inputs, Tensor labels) {
  check(inputs.defined() && labels.defined(), "TensorDataset: inputs and labels must be defined");
  check(inputs.dim() >= 1, "TensorDataset: inputs must have a sample axis, got shape ",
        inputs.shape());
  check(labels.dim() >= 1, "TensorDataset: labels must have a sample axis, got shape ",
        labels.shape());
  check(inputs.size(0) == labels.size(0), "TensorDataset: inputs ", inputs.shape(), " hold ",
        inputs.size(0), " samples but labels ", labels.shape(), " hold ", labels.size(0));
  inputs_ = inputs.detach().contiguous();
  labels_ = labels.detach().contiguous();
}

namespace {

/// Copies rows `indices` of the contiguous tensor `src` into a new [B, ...] tensor.
Tensor gather_rows(const Tensor& src, std::span<const std::int64_t> indices) {
  Shape shape = src.shape();
  const std::int64_t n = shape[0];
  shape[0] = static_cast<std::int64_t>(indices.size());
  Tensor out = empty(shape, src.dtype());
  std::int64_t row = element_size(src.dtype());
  for (std::size_t d = 1; d < shape.size(); ++d) row *= shape[d];
  const auto* from = static_cast<const char*>(src.raw_data());
  auto* to = static_cast<char*>(out.raw_data());
  for (std::size_t i = 0; i < indices.size(); ++i) {
    check_index(indices[i], n, "TensorDataset::get_batch");
    std::memcpy(to + static_cast<std::int64_t>(i) * row, from + indices[i] * row,
                static_cast<std::size_t>(row));
  }
  return out;
}

}  // namespace

Batch TensorDataset::get_batch(std::span<const std::int64_t> indices) const {
  return {gather_rows(inputs_, indices), gather_rows(labels_, indices)};
}

}  // namespace xgrad::data
