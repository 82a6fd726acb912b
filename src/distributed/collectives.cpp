#include "xgrad/distributed/collectives.hpp"

#include <cstring>
#include <string>
#include <vector>

#include "mpi_detail.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/distributed/init.hpp"
#include "xgrad/error.hpp"

namespace xgrad::distributed {

namespace {

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
    case ReduceOp::avg:
      return MPI_SUM;
    case ReduceOp::product:
      return MPI_PROD;
    case ReduceOp::min:
      return MPI_MIN;
    case ReduceOp::max:
      return MPI_MAX;
  }
  return MPI_SUM;
}

// Runs `start` (which posts one non-blocking collective) and waits for it.
template <class Start>
void run_collective(const std::string& what, Start&& start) {
  std::vector<MPI_Request> req(1);
  detail::check_mpi(start(&req[0]), what);
  detail::wait_all(req, what);
}

// A contiguous tensor with t's values whose memory the collective may use; `t` itself when
// it is contiguous (then the collective writes into it directly).
Tensor contiguous_buffer(const Tensor& t) {
  return t.is_contiguous() ? t : t.contiguous();
}

// Writes `buf` back into `t` when they are not the same memory.
void write_back(const Tensor& t, const Tensor& buf) {
  if (buf.impl() == t.impl()) return;
  no_grad guard;
  Tensor(t.impl()).copy_(buf);
}

}  // namespace

void all_reduce(const Tensor& tensor, ReduceOp op) {
  detail::require_initialized("distributed::all_reduce");
  check(tensor.defined(), "distributed::all_reduce: the tensor is undefined");
  const MPI_Datatype type = detail::mpi_type(tensor.dtype(), "distributed::all_reduce");
  check(op != ReduceOp::avg || is_floating(tensor.dtype()),
        "distributed::all_reduce: avg needs a float tensor, got ", dtype_name(tensor.dtype()));
  Tensor buf = contiguous_buffer(tensor);
  if (buf.numel() > 0) {
    run_collective(
        "all_reduce of a tensor of shape " + format_shape(tensor.shape()), [&](MPI_Request* r) {
          return MPI_Iallreduce(MPI_IN_PLACE, buf.raw_data(), static_cast<int>(buf.numel()), type,
                                mpi_op(op), MPI_COMM_WORLD, r);
        });
  }
  if (op == ReduceOp::avg) {
    no_grad guard;
    Tensor(buf.impl()).div_(static_cast<double>(world_size()));
  }
  write_back(tensor, buf);
}

double all_reduce(double value, ReduceOp op) {
  detail::require_initialized("distributed::all_reduce");
  double v = value;
  run_collective("all_reduce of a number", [&](MPI_Request* r) {
    return MPI_Iallreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, mpi_op(op), MPI_COMM_WORLD, r);
  });
  return op == ReduceOp::avg ? v / world_size() : v;
}

void broadcast(const Tensor& tensor, int root) {
  detail::require_initialized("distributed::broadcast");
  check(tensor.defined(), "distributed::broadcast: the tensor is undefined");
  const int n = world_size();
  check(root >= 0 && root < n, "distributed::broadcast: root ", root, " is outside 0..", n - 1);
  Tensor buf = contiguous_buffer(tensor);
  const auto bytes =
      static_cast<int>(buf.numel() * static_cast<std::int64_t>(element_size(buf.dtype())));
  if (bytes > 0) {
    run_collective("broadcast from rank " + std::to_string(root) + " of a tensor of shape " +
                       format_shape(tensor.shape()),
                   [&](MPI_Request* r) {
                     return MPI_Ibcast(buf.raw_data(), bytes, MPI_BYTE, root, MPI_COMM_WORLD, r);
                   });
  }
  write_back(tensor, buf);
}

void broadcast_parameters(nn::Module& module, int root) {
  for (const Tensor& p : module.parameters()) broadcast(p, root);
  for (const Tensor& b : module.buffers()) broadcast(b, root);
}

void barrier() {
  detail::require_initialized("distributed::barrier");
  run_collective("barrier", [&](MPI_Request* r) { return MPI_Ibarrier(MPI_COMM_WORLD, r); });
}

}  // namespace xgrad::distributed
