#include "xgrad/data/dataloader.hpp"

#include <algorithm>
#include <numeric>
#include <span>

#include "xgrad/error.hpp"

namespace xgrad::data {

namespace {

/// Uniform integer in [0, bound) from a 64-bit generator, by rejection (unbiased, and unlike
/// std::uniform_int_distribution the same on every standard library).
std::uint64_t bounded(std::mt19937_64& gen, std::uint64_t bound) {
  const std::uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
  std::uint64_t r = gen();
  while (r < threshold) r = gen();
  return r % bound;
}

}  // namespace

DataLoader::DataLoader(const Dataset& dataset, DataLoaderOptions options)
    : dataset_(dataset), options_(options) {
  check(options_.batch_size >= 1, "DataLoader: batch_size must be at least 1, got ",
        options_.batch_size);
}

std::int64_t DataLoader::size() const {
  const std::int64_t n = dataset_.size();
  const std::int64_t b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::start_epoch(std::int64_t epoch) {
  const auto n = static_cast<std::size_t>(dataset_.size());
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), std::int64_t{0});
  if (options_.shuffle && n > 1) {
    const std::uint64_t s = options_.seed;
    const auto e = static_cast<std::uint64_t>(epoch);
    std::seed_seq seq{static_cast<std::uint32_t>(s), static_cast<std::uint32_t>(s >> 32),
                      static_cast<std::uint32_t>(e), static_cast<std::uint32_t>(e >> 32)};
    generator_.seed(seq);
    for (std::size_t i = n - 1; i > 0; --i)
      std::swap(order_[i], order_[bounded(generator_, i + 1)]);
  }
  current_epoch_ = epoch;
  next_epoch_ = epoch;
  next_batch_ = 0;
}

void DataLoader::fetch(std::int64_t batch) {
  const std::int64_t n = static_cast<std::int64_t>(order_.size());
  const std::int64_t first = batch * options_.batch_size;
  const std::int64_t count = std::min(options_.batch_size, n - first);
  current_ = dataset_.get_batch(
      std::span<const std::int64_t>(order_.data() + first, static_cast<std::size_t>(count)));
  next_batch_ = batch + 1;
  if (next_batch_ == size()) {
    next_epoch_ = current_epoch_ + 1;
    next_batch_ = 0;
  }
}

DataLoader::Iterator DataLoader::begin() {
  std::int64_t first = 0;
  if (resume_) {
    first = next_batch_;
    resume_ = false;
  } else if (next_batch_ != 0) {
    ++next_epoch_;  // the previous loop stopped early: its epoch is abandoned
  }
  start_epoch(next_epoch_);
  if (first < size()) {
    fetch(first);
  } else {
    next_epoch_ = current_epoch_ + 1;  // an empty epoch (no batches) is over at once
  }
  return Iterator(this, std::min(first, size()));
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  ++position_;
  if (position_ < loader_->size()) {
    loader_->fetch(position_);
  } else {
    loader_->current_ = Batch{};  // release the last batch's memory
  }
  return *this;
}

void DataLoader::set_state(const DataLoaderState& state) {
  check(state.epoch >= 0, "DataLoader::set_state: epoch must be non-negative, got ", state.epoch);
  const std::int64_t batches = size();
  check(state.batch >= 0 && (state.batch < batches || state.batch == 0),
        "DataLoader::set_state: batch ", state.batch, " is out of range for an epoch of ", batches,
        " batches");
  options_.seed = state.seed;
  next_epoch_ = state.epoch;
  next_batch_ = state.batch;
  current_epoch_ = state.epoch;
  resume_ = state.batch != 0;
}

}  // namespace xgrad::data
