#include "xgrad/distributed/sampler.hpp"

#include "xgrad/data/dataloader.hpp"
#include "xgrad/error.hpp"

namespace xgrad::distributed {

namespace {

// A dataset of N samples with nothing in them: a DataLoader over it gives the order it would
// visit any dataset of N samples in, without the sampler repeating its shuffle.
class Positions final : public data::Dataset {
 public:
  explicit Positions(std::int64_t n) : n_(n) {}
  std::int64_t size() const override { return n_; }
  data::Batch get_batch(std::span<const std::int64_t>) const override { return {}; }

 private:
  std::int64_t n_;
};

}  // namespace

DistributedSampler::DistributedSampler(std::int64_t dataset_size, DistributedSamplerOptions options)
    : dataset_size_(dataset_size), options_(options) {
  const std::int64_t r = options.num_replicas;
  check(dataset_size >= 0, "DistributedSampler: dataset size must be >= 0, got ", dataset_size);
  check(r >= 1, "DistributedSampler: num_replicas must be >= 1, got ", r);
  check(options.rank >= 0 && options.rank < r, "DistributedSampler: rank ", options.rank,
        " is outside 0..", r - 1, " (num_replicas ", r, ")");
  num_samples_ = options.drop_last ? dataset_size / r : (dataset_size + r - 1) / r;
  check(!options.drop_last || num_samples_ > 0, "DistributedSampler: drop_last with ", dataset_size,
        " samples and ", r, " replicas leaves no sample for a rank");
  set_epoch(0);
}

void DistributedSampler::set_epoch(std::int64_t epoch) {
  check(epoch >= 0, "DistributedSampler::set_epoch: epoch must be >= 0, got ", epoch);
  if (epoch == epoch_) return;
  epoch_ = epoch;
  std::vector<std::int64_t> order;
  if (dataset_size_ > 0) {
    Positions positions(dataset_size_);
    data::DataLoader loader(
        positions,
        {.batch_size = dataset_size_, .shuffle = options_.shuffle, .seed = options_.seed});
    loader.set_state({options_.seed, epoch, 0});
    loader.begin();
    order = loader.order();
  }
  const std::int64_t total = total_size();
  for (std::int64_t i = dataset_size_; i < total; ++i)  // torch's padding: repeat the start
    order.push_back(order[static_cast<std::size_t>(i % dataset_size_)]);
  indices_.clear();
  indices_.reserve(static_cast<std::size_t>(num_samples_));
  for (std::int64_t i = options_.rank; i < total; i += options_.num_replicas)
    indices_.push_back(order[static_cast<std::size_t>(i)]);
}

ShardDataset::ShardDataset(const data::Dataset& dataset, DistributedSampler& sampler)
    : dataset_(dataset), sampler_(sampler) {
  check(sampler.dataset_size() == dataset.size(), "ShardDataset: the sampler was made for ",
        sampler.dataset_size(), " samples, the dataset has ", dataset.size());
}

data::Batch ShardDataset::get_batch(std::span<const std::int64_t> indices) const {
  const auto& idx = sampler_.indices();
  std::vector<std::int64_t> mapped;
  mapped.reserve(indices.size());
  for (std::int64_t i : indices) {
    check(i >= 0 && i < static_cast<std::int64_t>(idx.size()), "ShardDataset: index ", i,
          " is outside 0..", static_cast<std::int64_t>(idx.size()) - 1);
    mapped.push_back(idx[static_cast<std::size_t>(i)]);
  }
  return dataset_.get_batch(mapped);
}

}  // namespace xgrad::distributed
