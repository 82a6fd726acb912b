// DataLoader: cuts a Dataset into batches, one pass (epoch) per range-for loop.
//
//   xgrad::data::MnistDataset train("/usr/share/datasets/fashion-mnist", Split::train);
//   xgrad::data::DataLoader loader(train, {.batch_size = 64, .shuffle = true, .seed = 42});
//   for (int epoch = 0; epoch < 10; ++epoch)
//     for (auto& batch : loader) {  // batch.inputs float32 [64, 784], batch.labels int64 [64]
//       ...
//     }
//
// The batch size picks the flavour of gradient descent one optimizer step per batch gives:
//   batch_size == dataset size  batch (full) gradient descent: one step per epoch, on the exact
//                               gradient of the training loss;
//   batch_size == 1             stochastic gradient descent: one step per sample, on a very
//                               noisy gradient estimate;
//   batch_size 32, 64, ...      mini-batch gradient descent, the usual compromise: gradients
//                               averaged over B samples (noise ~ 1/sqrt(B)), N/B steps an epoch,
//                               and vectorised (matrix-matrix) work per step.
//
// Shuffling: the order of epoch e is a permutation of 0..N-1 drawn (Fisher–Yates) from the
// loader's own 64-bit Mersenne Twister, re-seeded at the start of each epoch from (seed, e)
// through std::seed_seq. So the same seed gives the same sequence of orders on any platform,
// each epoch's order differs from the previous one (equal only with probability 1/N!), the
// process-wide generator (xgrad::manual_seed) is neither used nor disturbed, and a checkpoint
// needs only {seed, epoch, batch} (state()/set_state()) to resume the exact stream of batches.
#pragma once

#include <cstdint>
#include <iterator>
#include <random>
#include <vector>

#include "xgrad/data/dataset.hpp"

namespace xgrad::data {

/// How a DataLoader batches its dataset. Usable with designated initialisers:
/// DataLoaderOptions{.batch_size = 64, .shuffle = true}.
struct DataLoaderOptions {
  /// Samples per batch, >= 1 (the last batch of an epoch may be smaller unless drop_last).
  std::int64_t batch_size = 1;
  /// Visit samples in a fresh seeded random order each epoch (else 0..N-1 in order).
  bool shuffle = false;
  /// Drop the last batch of an epoch when it has fewer than batch_size samples.
  bool drop_last = false;
  /// Seed of the shuffling order (ignored without shuffle).
  std::uint64_t seed = 0;
};

/// Where a DataLoader stands: the next batch it yields is batch `batch` (0-based) of epoch
/// `epoch` (0-based), shuffled with `seed`. Save it with a checkpoint; restore with set_state.
struct DataLoaderState {
  std::uint64_t seed = 0;
  std::int64_t epoch = 0;
  std::int64_t batch = 0;
  bool operator==(const DataLoaderState&) const = default;
};

/// Iterates a Dataset in batches. Each range-for over the loader (each begin()) is one epoch
/// and yields size() batches; the next begin() starts the next epoch (a loop left early by
/// `break` abandons the rest of its epoch, as torch's DataLoader does). After set_state()
/// with batch > 0, the next begin() instead resumes that epoch at that batch.
///
/// The loader keeps a reference to the dataset, which must outlive it. The loader is the
/// iteration state: run one loop over it at a time (iterators of an earlier begin() are
/// invalidated by a later one), from one thread.
class DataLoader {
 public:
  /// Throws xgrad::Error when options.batch_size < 1.
  DataLoader(const Dataset& dataset, DataLoaderOptions options = {});
  /// A temporary dataset would dangle: keep the dataset in a variable that outlives the loader.
  DataLoader(const Dataset&& dataset, DataLoaderOptions options = {}) = delete;

  /// Input iterator over one epoch's batches; *it is the current Batch (owned by the loader,
  /// valid until the iterator is advanced), ++it fetches the next one.
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = Batch*;
    using reference = Batch&;

    Iterator() = default;
    Batch& operator*() const { return loader_->current_; }
    Batch* operator->() const { return &loader_->current_; }
    Iterator& operator++();
    void operator++(int) { ++*this; }
    bool operator==(const Iterator& o) const { return position_ == o.position_; }

   private:
    friend class DataLoader;
    Iterator(DataLoader* loader, std::int64_t position) : loader_(loader), position_(position) {}
    DataLoader* loader_ = nullptr;
    std::int64_t position_ = 0;  // index of the current batch in the epoch; size() at the end
  };

  /// Starts the next epoch (or resumes the one set_state() named) and fetches its first batch.
  Iterator begin();
  /// The past-the-end iterator of an epoch.
  Iterator end() { return Iterator(this, size()); }

  /// Batches per epoch: ceil(N / batch_size), or floor(N / batch_size) with drop_last.
  std::int64_t size() const;
  /// Samples in the batch (B). Batches: all B = batch_size except perhaps the last.
  std::int64_t batch_size() const { return options_.batch_size; }
  const DataLoaderOptions& options() const { return options_; }
  const Dataset& dataset() const { return dataset_; }

  /// The epoch (0-based) of the batch most recently yielded; before any batch, the epoch the
  /// first begin() will start.
  std::int64_t epoch() const { return current_epoch_; }
  /// The sample indices of the current epoch in visiting order (N of them, including any
  /// dropped tail); empty before the first begin().
  const std::vector<std::int64_t>& order() const { return order_; }

  /// The position of the next batch: inside a loop body (after batch b of epoch e was
  /// yielded) it is {seed, e, b + 1}, or {seed, e + 1, 0} after the epoch's last batch.
  DataLoaderState state() const { return {options_.seed, next_epoch_, next_batch_}; }
  /// Moves the loader so that the next begin() yields batch state.batch of epoch state.epoch
  /// shuffled with state.seed (which replaces options().seed), exactly as the loader that
  /// produced the state would have. The dataset and batch size must be the ones of that loader.
  /// Throws xgrad::Error when epoch < 0 or batch is outside 0..size()-1 (0 when size() == 0).
  void set_state(const DataLoaderState& state);

 private:
  void start_epoch(std::int64_t epoch);
  void fetch(std::int64_t batch);

  const Dataset& dataset_;
  DataLoaderOptions options_;
  std::mt19937_64 generator_;
  std::vector<std::int64_t> order_;
  Batch current_;
  std::int64_t current_epoch_ = 0;
  std::int64_t next_epoch_ = 0;
  std::int64_t next_batch_ = 0;
  bool resume_ = false;  // set_state() asked the next begin() to resume mid-epoch
};

}  // namespace xgrad::data
