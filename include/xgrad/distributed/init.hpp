// xgrad::distributed: data-parallel training over MPI (docs/distributed.md). This header: the
// process group — start and stop MPI, who am I, how many are we, and how failures end a run.
//
//   int main(int argc, char** argv) {
//     auto session = xgrad::distributed::init(argc, argv);   // MPI_Init ... MPI_Finalize
//     std::cout << xgrad::distributed::rank() << " of " << xgrad::distributed::world_size();
//   }
//
// Built only when CMake finds MPI: link the target xgrad::distributed (library
// xgrad_distributed). Every call below throws xgrad::Error when the library is used before
// init() or after finalize().
#pragma once

#include <chrono>
#include <string>

namespace xgrad::distributed {

/// How init() sets up the process group.
struct InitOptions {
  /// How long a collective (all-reduce, broadcast, barrier, a DistributedDataParallel bucket)
  /// may wait for the other ranks before it throws xgrad::Error naming the ranks that did not
  /// answer. Zero (the default) takes XGRAD_DISTRIBUTED_TIMEOUT (seconds) from the
  /// environment, else 60 s. A rank that dies is normally reported sooner by mpirun itself,
  /// which then stops the whole job.
  std::chrono::milliseconds timeout{0};
};

/// Ends the process group when it goes out of scope (MPI_Finalize), unless an exception is
/// unwinding the stack: then it leaves MPI alone (finalize is collective and would wait for
/// ranks that may be gone) and the program should call abort() after reporting the error.
class Session {
 public:
  Session() = default;
  ~Session();
  Session(Session&& other) noexcept : owner_(other.owner_) { other.owner_ = false; }
  Session& operator=(Session&&) = delete;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

 private:
  friend Session init(int& argc, char**& argv, InitOptions options);
  friend Session init(InitOptions options);
  explicit Session(bool owner) : owner_(owner) {}
  bool owner_ = false;
};

/// Starts MPI (MPI_Init_thread, MPI_THREAD_FUNNELED: MPI is called from one thread) unless it
/// already runs, sets MPI_COMM_WORLD's error handler to MPI_ERRORS_RETURN (an MPI failure
/// becomes an xgrad::Error, never a silent abort inside MPI) and returns the Session that
/// finalizes it. Run under mpirun (`mpirun -np 2 prog`); started alone, a program is a world
/// of one. Throws xgrad::Error when MPI fails to start or was finalized before.
[[nodiscard]] Session init(int& argc, char**& argv, InitOptions options = {});
[[nodiscard]] Session init(InitOptions options = {});
/// Stops MPI (MPI_Finalize) after a barrier; a no-op when it is not running.
void finalize();
/// True between init() and finalize().
bool is_initialized();

/// This process's rank, 0..world_size()-1 (MPI_COMM_WORLD).
int rank();
/// The number of processes (mpirun's -np).
int world_size();
/// The wait limit of collectives (InitOptions::timeout).
std::chrono::milliseconds timeout();

/// Stops every process of the job (MPI_Abort) with exit code `code`, after writing
/// "rank R of N: message" to stderr when the message is not empty. Never returns; without
/// MPI running it calls std::exit(code).
[[noreturn]] void abort(int code, const std::string& message = "");

}  // namespace xgrad::distributed
