// Collectives over all ranks (MPI_COMM_WORLD): every rank must make the same calls in the same
// order. Each waits at most distributed::timeout() (init.hpp) for the others and then throws
// xgrad::Error naming the ranks that did not answer; MPI errors become xgrad::Error too.
// Built only when CMake finds MPI (target xgrad::distributed; docs/distributed.md).
#pragma once

#include "xgrad/nn/module.hpp"
#include "xgrad/tensor.hpp"

namespace xgrad::distributed {

/// How all_reduce combines the ranks' values (torch.distributed.ReduceOp). avg is the sum
/// divided by world_size() (float dtypes only).
enum class ReduceOp { sum, avg, product, min, max };

/// Replaces `tensor` (any shape; float32, float64 or int64) in place, on every rank, by the
/// elementwise reduction of the ranks' tensors (MPI_Iallreduce, then a wait). The shapes and
/// dtypes must agree across ranks (MPI cannot check it: a mismatch is undefined behaviour).
/// The tensor's autograd history is not touched (a leaf that requires grad is written as an
/// optimizer writes it, without recording). Throws xgrad::Error for an undefined tensor, a
/// bool tensor, avg on int64, a timeout or an MPI failure.
void all_reduce(const Tensor& tensor, ReduceOp op = ReduceOp::sum);
/// The reduction of one number over the ranks (a loss to report, a count of correct answers).
double all_reduce(double value, ReduceOp op = ReduceOp::sum);

/// Overwrites `tensor` on every rank with root's (MPI_Ibcast of its bytes; any dtype, same
/// shape and dtype on every rank). Throws as all_reduce, and for a root outside
/// 0..world_size()-1.
void broadcast(const Tensor& tensor, int root = 0);

/// Copies root's parameters and buffers (module.parameters(), module.buffers(), in their
/// order) into every other rank's module, so that training starts from the same state
/// everywhere (what DistributedDataParallel's constructor does). The modules must have the
/// same structure on every rank. Throws as broadcast.
void broadcast_parameters(nn::Module& module, int root = 0);

/// Returns when every rank has called barrier() (MPI_Ibarrier, then a wait). Throws as
/// all_reduce.
void barrier();

}  // namespace xgrad::distributed
