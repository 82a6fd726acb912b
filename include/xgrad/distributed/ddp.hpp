// DistributedDataParallel: the same model on every rank, each on its own part of the batch;
// during backward every parameter's gradient is averaged over the ranks, so that after
// backward() all ranks hold the gradient of the mean loss over the union of their batches
// (torch.nn.parallel.DistributedDataParallel; Li et al., "PyTorch Distributed: Experiences on
// Accelerating Data Parallel Training", VLDB 2020). Built only when CMake finds MPI (target
// xgrad::distributed; docs/distributed.md).
//
//   auto session = distributed::init(argc, argv);
//   nn::MLP model({784, 256, 10});
//   distributed::DistributedDataParallel ddp(model);   // rank 0's weights go to every rank
//   optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
//   for (auto& batch : loader) {                          // loader over this rank's shard
//     Tensor loss = cross_entropy(ddp(batch.inputs), batch.labels);
//     opt.zero_grad();
//     loss.backward();                                    // returns with averaged gradients
//     opt.step();
//   }
//
// How: the parameters are grouped into buckets in reverse registration order (the order
// backward usually produces their gradients), each up to bucket_cap_mb (the first up to
// first_bucket_cap_mb, so that communication starts early) and of one dtype. A hook that runs
// after each parameter's gradient is accumulated (Tensor::register_post_accumulate_grad_hook)
// copies it into its bucket; when a bucket is complete its non-blocking MPI_Iallreduce starts
// (buckets start in index order on every rank, as MPI requires), so communication overlaps the
// rest of backward. The hook of the last gradient waits for every bucket and writes the
// averages (sum / world_size) back into the .grad() of each parameter.
//
// Which parameters will get a gradient is found after the forward, by walking the graph from
// its output (torch's find_unused_parameters): a parameter the forward did not use counts as a
// zero gradient in the average, and its .grad() is set to that average, so every rank takes
// the same step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/nn/module.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::distributed {

/// What DistributedDataParallel reports to DDPOptions::observer, in the order it happens.
struct DDPEvent {
  enum Kind {
    ready,     // a parameter's gradient was copied into its bucket (index: the parameter)
    launched,  // a bucket's MPI_Iallreduce started (index: the bucket)
    reduced,   // a bucket's all-reduce completed (index: the bucket)
    finished,  // every .grad() holds its average (index: 0)
  };
  Kind kind;
  std::size_t index;
};

struct DDPOptions {
  /// Bucket size in MiB (torch's bucket_cap_mb): a bucket is closed when adding the next
  /// parameter would make it larger (a single larger parameter gets a bucket of its own).
  double bucket_cap_mb = 25;
  /// The first bucket's limit (torch: 1 MiB), small so that the first all-reduce starts early.
  double first_bucket_cap_mb = 1;
  /// false: no bucket starts before the last gradient is ready (communication after backward,
  /// not overlapped; for comparison, bench/ddp_bench).
  bool overlap = true;
  /// Copy rank 0's buffers (batch norm statistics) to every rank before each forward, as torch
  /// does, so that evaluation agrees everywhere.
  bool broadcast_buffers = true;
  /// Called with each event (tests and benchmarks).
  std::function<void(const DDPEvent&)> observer = nullptr;
};

/// One bucket: the parameters (indices into module.parameters()) whose gradients are
/// all-reduced together, and its size.
struct DDPBucket {
  std::vector<std::size_t> parameters;
  Dtype dtype = Dtype::float32;
  std::int64_t numel = 0;
  std::size_t bytes() const { return static_cast<std::size_t>(numel) * element_size(dtype); }
};

class DistributedDataParallel {
 public:
  /// Wraps `module` (which must outlive this object): broadcasts rank 0's parameters and
  /// buffers to every rank, makes the buckets and hooks the module's forward and its
  /// parameters. Needs distributed::init(). Throws xgrad::Error when the module has no
  /// parameters, a parameter is not float32/float64, or bucket_cap_mb <= 0.
  explicit DistributedDataParallel(nn::Module& module, DDPOptions options = {});
  /// Detaches the forward hooks; the parameter hooks stay but do nothing any more.
  ~DistributedDataParallel();
  DistributedDataParallel(const DistributedDataParallel&) = delete;
  DistributedDataParallel& operator=(const DistributedDataParallel&) = delete;

  /// module(x): the module's forward, with DDP's hooks. Calling the module itself is the same.
  Tensor operator()(const Tensor& x) { return module_(x); }
  nn::Module& module() { return module_; }
  const std::vector<DDPBucket>& buckets() const;

  struct Reducer;  // the per-step state, shared with the hooks (ddp.cpp)

 private:
  nn::Module& module_;
  std::shared_ptr<Reducer> reducer_;
  nn::HookHandle pre_hook_, post_hook_;
};

}  // namespace xgrad::distributed
