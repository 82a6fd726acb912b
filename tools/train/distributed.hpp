// xgrad-train --distributed (docs/distributed.md): the same training on every rank of
// `mpirun -np N`, each on its own shard of every epoch (DistributedSampler), with gradients
// averaged during backward (DistributedDataParallel): the effective batch is N × --batch-size.
// Only rank 0 prints, logs and saves; the test set is evaluated in N shards and reduced; the
// reported training loss is the mean over the ranks. Without MPI in the build, --distributed
// is a usage error (exit code 2) saying so.
//
// Everything here is what xgrad-train.cpp calls; without --distributed every call is a no-op
// that returns its input.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/data/dataset.hpp"
#include "xgrad/distributed/sampler.hpp"
#include "xgrad/io/safetensors.hpp"
#include "xgrad/nn/module.hpp"
#ifdef XGRAD_HAVE_MPI
#include "xgrad/distributed/collectives.hpp"
#include "xgrad/distributed/ddp.hpp"
#include "xgrad/distributed/init.hpp"
#endif

namespace xgrad::train {

/// The samples `indices` of a dataset, as a Dataset (a rank's part of the test set).
class IndexSubset final : public xgrad::data::Dataset {
 public:
  IndexSubset(const xgrad::data::Dataset& base, std::vector<std::int64_t> indices)
      : base_(base), indices_(std::move(indices)) {}
  std::int64_t size() const override { return static_cast<std::int64_t>(indices_.size()); }
  xgrad::data::Batch get_batch(std::span<const std::int64_t> idx) const override {
    std::vector<std::int64_t> mapped;
    for (std::int64_t i : idx) mapped.push_back(indices_.at(static_cast<std::size_t>(i)));
    return base_.get_batch(mapped);
  }

 private:
  const xgrad::data::Dataset& base_;
  std::vector<std::int64_t> indices_;
};

class Distributed {
 public:
  /// Starts MPI when `on`. Throws std::invalid_argument (exit code 2) when `on` and this build
  /// has no MPI.
  Distributed(bool on, int& argc, char**& argv) {
    if (!on) return;
#ifdef XGRAD_HAVE_MPI
    session_.emplace(xgrad::distributed::init(argc, argv));
    rank_ = xgrad::distributed::rank();
    size_ = xgrad::distributed::world_size();
    if (rank_ != 0 && !std::freopen("/dev/null", "w", stdout))  // only rank 0 prints
      throw std::runtime_error("--distributed: cannot silence the output of rank " +
                               std::to_string(rank_));
#else
    (void)argc;
    (void)argv;
    throw std::invalid_argument(
        "--distributed: this xgrad-train was built without MPI support (install Open MPI, "
        "e.g. `apt-get install libopenmpi-dev openmpi-bin`, and configure the build again); "
        "see docs/distributed.md");
#endif
  }

  bool active() const {
    return size_ > 0;
  }
  /// The process that prints, logs and saves: rank 0, or the only one.
  bool is_main() const {
    return rank_ == 0;
  }

  /// One line about the process group, for the run's header (nothing without --distributed).
  std::string describe(std::int64_t batch_size) const {
    if (!active()) return "";
    return "distributed: " + std::to_string(size_) + (size_ == 1 ? " process" : " processes") +
           " (MPI), batch size " + std::to_string(batch_size) + " each, " +
           std::to_string(batch_size * size_) + " per step in all\n";
  }

  /// The dataset this rank trains on: its shard of `train` (set_epoch picks the epoch), or
  /// `train` itself. A DataLoader over it must not shuffle when active().
  const xgrad::data::Dataset& train_set(const xgrad::data::Dataset& train, std::uint64_t seed) {
    if (!active()) return train;
    sampler_ = std::make_unique<xgrad::distributed::DistributedSampler>(
        train.size(), xgrad::distributed::DistributedSamplerOptions{
                          .num_replicas = size_, .rank = rank_, .shuffle = true, .seed = seed});
    shard_ = std::make_unique<xgrad::distributed::ShardDataset>(train, *sampler_);
    return *shard_;
  }
  /// Before each epoch: the 0-based epoch the loader starts (loader.state().epoch).
  void set_epoch(std::int64_t epoch) {
    if (shard_) shard_->set_epoch(epoch);
  }

  /// Averages the model's gradients over the ranks from now on (and starts every rank from
  /// rank 0's weights).
  void wrap(xgrad::nn::Module& model) {
    model_ = &model;
#ifdef XGRAD_HAVE_MPI
    if (active()) ddp_ = std::make_unique<xgrad::distributed::DistributedDataParallel>(model);
#endif
  }

  /// The mean of `value` over the ranks (the training loss of the whole step).
  double mean(double value) const {
#ifdef XGRAD_HAVE_MPI
    if (active()) return xgrad::distributed::all_reduce(value, xgrad::distributed::ReduceOp::avg);
#endif
    return value;
  }

  /// (mean loss, accuracy) over the whole test set: each rank evaluates every size-th sample
  /// from its rank on, with rank 0's buffers, and the sums are reduced. `eval(dataset)` returns
  /// (mean loss, accuracy) over a dataset.
  template <class Eval>
  std::pair<double, double> evaluate(const xgrad::data::Dataset& test, Eval&& eval) {
    if (!active()) return eval(test);
#ifdef XGRAD_HAVE_MPI
    if (model_)
      for (const xgrad::Tensor& b : model_->buffers()) xgrad::distributed::broadcast(b, 0);
#endif
    std::vector<std::int64_t> mine;
    for (std::int64_t i = rank_; i < test.size(); i += size_) mine.push_back(i);
    const IndexSubset part(test, mine);
    auto [loss, acc] = mine.empty() ? std::pair<double, double>{0, 0} : eval(part);
    const double n = static_cast<double>(mine.size());
    double loss_sum = loss * n, correct = std::round(acc * n);
#ifdef XGRAD_HAVE_MPI
    loss_sum = xgrad::distributed::all_reduce(loss_sum);
    correct = xgrad::distributed::all_reduce(correct);
#endif
    const double total = static_cast<double>(test.size());
    return {loss_sum / total, correct / total};
  }

  /// What a checkpoint records of the process group: resuming needs the same count.
  void annotate(std::map<std::string, std::string>& meta) const {
    if (active()) meta["train.world_size"] = std::to_string(size_);
  }
  /// Throws std::invalid_argument when `path` was saved by a run on another number of
  /// processes than this one.
  void check_resume(const std::string& path) const {
    const auto meta = xgrad::io::load_safetensors_metadata(path);
    const auto it = meta.find("train.world_size");
    const std::string saved = it == meta.end() ? "1" : it->second;
    const std::string here = std::to_string(active() ? size_ : 1);
    if (saved != here)
      throw std::invalid_argument("--resume: '" + path + "' was written by a run on " + saved +
                                  " process(es), this run has " + here +
                                  " (resume with the same mpirun -np, and --distributed when "
                                  "it was distributed)");
  }

 private:
#ifdef XGRAD_HAVE_MPI
  std::optional<xgrad::distributed::Session> session_;
  std::unique_ptr<xgrad::distributed::DistributedDataParallel> ddp_;
#endif
  int rank_ = 0, size_ = 0;  // size_ 0: not distributed
  std::unique_ptr<xgrad::distributed::DistributedSampler> sampler_;
  std::unique_ptr<xgrad::distributed::ShardDataset> shard_;
  xgrad::nn::Module* model_ = nullptr;
};

/// "rank R of N: " in a distributed run (for error messages), else "".
inline std::string rank_prefix() {
#ifdef XGRAD_HAVE_MPI
  if (xgrad::distributed::is_initialized() && xgrad::distributed::world_size() > 1)
    return "rank " + std::to_string(xgrad::distributed::rank()) + " of " +
           std::to_string(xgrad::distributed::world_size()) + ": ";
#endif
  return "";
}

/// The exit code of a failed run: in a distributed run of several processes the whole job is
/// stopped (MPI_Abort: the other ranks must not wait for this one), so this never returns.
inline int exit_code(int code) {
#ifdef XGRAD_HAVE_MPI
  if (xgrad::distributed::is_initialized()) {
    if (xgrad::distributed::world_size() > 1) xgrad::distributed::abort(code);
    xgrad::distributed::finalize();
  }
#endif
  return code;
}

}  // namespace xgrad::train
