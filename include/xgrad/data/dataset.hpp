// Datasets: indexable collections of (input, label) samples that hand out batches as tensors.
//
//   MnistDataset   MNIST / Fashion-MNIST from their IDX files; pixels stay uint8 in memory and
//                  are scaled to float32 in [0, 1] only when a batch is made.
//   TensorDataset  samples held in two tensors (rows of `inputs`, rows of `labels`).
//
// A DataLoader (dataloader.hpp) draws batches of indices from a dataset, epoch after epoch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::data {

/// A batch of B samples. Both tensors are fresh (contiguous, no autograd history, not
/// requiring grad), so a training step may modify or keep them.
struct Batch {
  /// [B, ...] sample inputs; for MnistDataset float32 [B, rows*cols] in [0, 1].
  Tensor inputs;
  /// [B, ...] labels; for MnistDataset int64 [B] (class indices, 0..9 for (Fashion-)MNIST).
  Tensor labels;
};

/// The interface a DataLoader needs: a number of samples and a way to gather a batch of them.
/// The library's datasets are read-only after construction, so const calls may run
/// concurrently.
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of samples N; valid indices are 0..N-1.
  virtual std::int64_t size() const = 0;
  /// The samples at `indices`, in that order (repeats allowed; an empty list gives B = 0).
  /// Throws xgrad::Error when an index is outside 0..size()-1.
  virtual Batch get_batch(std::span<const std::int64_t> indices) const = 0;
  /// The single sample `index` as a batch of one (B = 1). Throws like get_batch.
  Batch get(std::int64_t index) const {
    return get_batch(std::span<const std::int64_t>(&index, 1));
  }
};

/// Which half of MNIST-style data to load: the training files (train-*) or the test files
/// (t10k-*).
enum class Split { train, test };

/// Number of classes of MNIST and Fashion-MNIST: labels 0..9.
inline constexpr std::int64_t kMnistClasses = 10;

/// MNIST or Fashion-MNIST (identical file layout): N >= 1 images of rows x cols uint8 pixels
/// and N uint8 labels, each in 0..num_classes-1. Memory: N*rows*cols + N bytes (47 MB for the
/// 60000 training images).
/// Batches: inputs float32 [B, rows*cols], each pixel p as p / 255.0f (so in [0, 1], row-major
/// within an image); labels int64 [B].
class MnistDataset : public Dataset {
 public:
  /// Loads `dir`/{train,t10k}-images-idx3-ubyte and the matching -labels-idx1-ubyte file for
  /// `split`, each taken as "<name>.gz" when that exists, else "<name>" (plain). Every label
  /// must be below `num_classes` (10 for (Fashion-)MNIST; another count for an MNIST-style
  /// dataset of other classes).
  /// Throws xgrad::Error when a file is missing (naming both candidates), is not a valid IDX
  /// file of the right kind (see read_idx: images must have magic 0x00000803, labels
  /// 0x00000801), when the label count differs from the image count, when the files hold no
  /// images ("holds no images": an empty dataset cannot be trained on or evaluated), when a
  /// label is num_classes or more (the message names the labels file, the label, its position
  /// and the class count), or when num_classes is outside 1..256 (labels are bytes).
  MnistDataset(const std::filesystem::path& dir, Split split,
               std::int64_t num_classes = kMnistClasses);
  /// Loads an explicit pair of files (gzip or plain). Throws as the constructor above.
  MnistDataset(const std::filesystem::path& images_file, const std::filesystem::path& labels_file,
               std::int64_t num_classes = kMnistClasses);

  std::int64_t size() const override { return count_; }
  /// inputs float32 [B, rows*cols] in [0, 1], labels int64 [B]. Throws xgrad::Error on an index
  /// out of range.
  Batch get_batch(std::span<const std::int64_t> indices) const override;

  /// The number of classes C; every label is in 0..C-1.
  std::int64_t num_classes() const { return num_classes_; }
  /// Image height and width in pixels (28 and 28 for (Fashion-)MNIST).
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  /// The raw pixels, uint8 [N, rows, cols] row-major, and labels, uint8 [N].
  const std::vector<std::uint8_t>& raw_images() const { return pixels_; }
  const std::vector<std::uint8_t>& raw_labels() const { return labels_; }

  /// The file path MnistDataset(dir, split) would load for `name` (e.g. "train-images-idx3-ubyte"):
  /// dir/name.gz when it exists, else dir/name. Throws xgrad::Error when neither exists.
  static std::filesystem::path resolve_file(const std::filesystem::path& dir,
                                            const std::string& name);

 private:
  void load(const std::filesystem::path& images_file, const std::filesystem::path& labels_file);
  void check_labels(const std::vector<std::uint8_t>& labels,
                    const std::filesystem::path& labels_file) const;

  std::int64_t count_ = 0, rows_ = 0, cols_ = 0, num_classes_ = kMnistClasses;
  std::vector<std::uint8_t> pixels_;
  std::vector<std::uint8_t> labels_;
};

/// A dataset held in memory as two tensors whose first axis indexes samples: sample i is
/// (inputs[i], labels[i]). Any dtypes and trailing shapes; batches keep them: inputs
/// [B, ...inputs.shape[1:]], labels [B, ...labels.shape[1:]] (labels [N] gives [B]).
/// The tensors are held detached, by handle when contiguous (then writing into them later
/// changes later batches), else as a contiguous copy.
class TensorDataset : public Dataset {
 public:
  /// Throws xgrad::Error when either tensor is undefined or 0-d, or when inputs.size(0) !=
  /// labels.size(0).
  TensorDataset(Tensor inputs, Tensor labels);

  std::int64_t size() const override { return inputs_.size(0); }
  /// Copies the rows at `indices`. Throws xgrad::Error on an index out of range.
  Batch get_batch(std::span<const std::int64_t> indices) const override;

  const Tensor& inputs() const { return inputs_; }
  const Tensor& labels() const { return labels_; }

 private:
  Tensor inputs_, labels_;
};

}  // namespace xgrad::data
