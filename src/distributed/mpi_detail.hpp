// What the MPI parts of xgrad::distributed share (never seen by users): error checks, waits
// with a deadline, dtype to MPI datatype.
#pragma once

#define OMPI_SKIP_MPICXX 1  // the C API only
#include <mpi.h>

#include <string>
#include <vector>

#include "xgrad/dtype.hpp"

namespace xgrad::distributed::detail {

/// Throws xgrad::Error unless MPI is running (init() was called, finalize() was not).
void require_initialized(const char* what);
/// "rank R of N": how messages name this process.
std::string who();
/// Throws xgrad::Error naming `what` and MPI's own text for a failed call (rc != MPI_SUCCESS).
void check_mpi(int rc, const std::string& what);
/// Waits until every request completes, polling MPI_Testall (so MPI progresses) with a
/// growing pause between polls; after distributed::timeout() throws xgrad::Error saying that
/// `what` got no answer and naming the ranks that may have stopped.
void wait_all(std::vector<MPI_Request>& requests, const std::string& what);
/// Progresses MPI on `requests` once (MPI_Testall) without waiting; true when all completed.
bool test_all(std::vector<MPI_Request>& requests, const std::string& what);
/// The MPI datatype of a float32, float64 or int64 element; throws for bool.
MPI_Datatype mpi_type(Dtype dtype, const char* what);

}  // namespace xgrad::distributed::detail
