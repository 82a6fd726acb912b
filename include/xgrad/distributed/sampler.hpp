// DistributedSampler: which samples of a dataset each rank trains on, epoch after epoch
// (torch.utils.data.distributed.DistributedSampler). Needs no MPI: it is part of the core
// library, and the ranks agree because they compute the same thing from the same seed.
//
//   distributed::DistributedSampler sampler(train.size(), {.num_replicas =
//   distributed::world_size(),
//                                                          .rank = distributed::rank(),
//                                                          .seed = 42});
//   distributed::ShardDataset shard(train, sampler);   // this rank's samples, as a Dataset
//   data::DataLoader loader(shard, {.batch_size = 32});  // no shuffle: the sampler shuffles
//   for (std::int64_t epoch = 0; epoch < epochs; ++epoch) {
//     shard.set_epoch(epoch);
//     for (auto& batch : loader) { ... }
//   }
//
// Epoch e's global order is the permutation a DataLoader with shuffle and the same seed visits
// in its epoch e (dataloader.hpp), padded as torch pads; rank r takes positions r, r + R,
// r + 2R, ... of it (R = num_replicas). So batch k of the R ranks (batch size B each) together
// hold exactly batch k of a single process with batch size R·B: data-parallel training sees
// the batches of the single-process run with the same seed.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "xgrad/data/dataset.hpp"

namespace xgrad::distributed {

struct DistributedSamplerOptions {
  /// Number of ranks R (distributed::world_size()), >= 1.
  std::int64_t num_replicas = 1;
  /// This rank, 0..R-1 (distributed::rank()).
  std::int64_t rank = 0;
  /// A new seeded random order each epoch (else 0..N-1).
  bool shuffle = true;
  /// Seed of the order; must be the same on every rank.
  std::uint64_t seed = 0;
  /// Drop the tail that does not divide evenly among the ranks instead of padding.
  bool drop_last = false;
};

/// The indices of one rank, per epoch. With N samples and R ranks each rank gets
/// num_samples() = ceil(N / R) indices, or floor(N / R) with drop_last (torch's counts).
/// Without drop_last the global order is padded to R·num_samples() by repeating its beginning
/// (those samples are seen twice in the epoch); with drop_last its tail is dropped.
class DistributedSampler {
 public:
  /// Throws xgrad::Error when dataset_size < 0, num_replicas < 1, rank is outside
  /// 0..num_replicas-1, or drop_last leaves no sample for a rank (dataset_size < num_replicas).
  DistributedSampler(std::int64_t dataset_size, DistributedSamplerOptions options);

  /// The epoch (0-based) whose order indices() gives; set it before each epoch.
  void set_epoch(std::int64_t epoch);
  std::int64_t epoch() const { return epoch_; }
  /// This rank's indices of the current epoch, num_samples() of them, in visiting order.
  const std::vector<std::int64_t>& indices() const { return indices_; }
  std::int64_t num_samples() const { return num_samples_; }
  /// num_samples() · num_replicas: the padded (or cut) length of the global order.
  std::int64_t total_size() const { return num_samples_ * options_.num_replicas; }
  const DistributedSamplerOptions& options() const { return options_; }
  /// The N the sampler was made for.
  std::int64_t dataset_size() const { return dataset_size_; }

 private:
  std::int64_t dataset_size_;
  DistributedSamplerOptions options_;
  std::int64_t num_samples_ = 0;
  std::int64_t epoch_ = -1;
  std::vector<std::int64_t> indices_;
};

/// A rank's shard as a Dataset: sample i is dataset[sampler.indices()[i]] for the sampler's
/// current epoch, so a DataLoader over it (without shuffle) yields this rank's batches. Keeps
/// references to the dataset and the sampler, which must outlive it.
class ShardDataset : public data::Dataset {
 public:
  /// Throws xgrad::Error when the sampler was made for another dataset size.
  ShardDataset(const data::Dataset& dataset, DistributedSampler& sampler);
  /// Moves the sampler to `epoch` (see DistributedSampler::set_epoch).
  void set_epoch(std::int64_t epoch) { sampler_.set_epoch(epoch); }
  std::int64_t size() const override { return sampler_.num_samples(); }
  /// Throws xgrad::Error on an index outside 0..size()-1.
  data::Batch get_batch(std::span<const std::int64_t> indices) const override;

 private:
  const data::Dataset& dataset_;
  DistributedSampler& sampler_;
};

}  // namespace xgrad::distributed
