#include "xgrad/distributed/init.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <thread>

#include "mpi_detail.hpp"
#include "xgrad/error.hpp"

namespace xgrad::distributed {

namespace {

std::chrono::milliseconds g_timeout{60000};

std::chrono::milliseconds timeout_from(const InitOptions& options) {
  if (options.timeout.count() > 0) return options.timeout;
  if (const char* env = std::getenv("XGRAD_DISTRIBUTED_TIMEOUT")) {
    char* end = nullptr;
    const double s = std::strtod(env, &end);
    check(end != env && *end == '\0' && s > 0, "distributed::init: XGRAD_DISTRIBUTED_TIMEOUT='",
          env, "' is not a number of seconds > 0");
    return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
  }
  return std::chrono::milliseconds(60000);
}

bool mpi_running() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

bool start(int* argc, char*** argv, const InitOptions& options) {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  check(!fin, "distributed::init: MPI was finalized already (it cannot be started twice)");
  const auto t = timeout_from(options);
  bool owner = false;
  if (!init) {
    int provided = 0;
    const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    check(rc == MPI_SUCCESS, "distributed::init: MPI_Init_thread failed (error ", rc, ")");
    owner = true;
  }
  detail::check_mpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN),
                    "distributed::init: MPI_Comm_set_errhandler");
  g_timeout = t;
  return owner;
}

}  // namespace

Session::~Session() {
  if (!owner_) return;
  // While an exception unwinds, finalize could wait forever for ranks that are gone: the
  // program reports the error and calls abort() instead.
  if (std::uncaught_exceptions() > 0) return;
  try {
    finalize();
  } catch (const std::exception& e) {
    std::cerr << "xgrad::distributed: " << e.what() << "\n";
  }
}

Session init(int& argc, char**& argv, InitOptions options) {
  return Session(start(&argc, &argv, options));
}

Session init(InitOptions options) {
  return Session(start(nullptr, nullptr, options));
}

void finalize() {
  if (!mpi_running()) return;
  {
    MPI_Request r;
    std::vector<MPI_Request> reqs;
    if (MPI_Ibarrier(MPI_COMM_WORLD, &r) == MPI_SUCCESS) {
      reqs.push_back(r);
      detail::wait_all(reqs, "finalize (barrier)");
    }
  }
  MPI_Finalize();
}

bool is_initialized() {
  return mpi_running();
}

int rank() {
  detail::require_initialized("distributed::rank");
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  detail::require_initialized("distributed::world_size");
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

std::chrono::milliseconds timeout() {
  return g_timeout;
}

void abort(int code, const std::string& message) {
  if (!mpi_running()) {
    if (!message.empty()) std::cerr << message << "\n";
    std::exit(code);
  }
  if (!message.empty()) std::cerr << detail::who() << ": " << message << std::endl;
  MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);  // not reached
}

namespace detail {

void require_initialized(const char* what) {
  check(mpi_running(), what,
        ": MPI is not running (call distributed::init() first, and not after finalize())");
}

std::string who() {
  if (!mpi_running()) return "rank 0 of 1";
  int r = 0, n = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return "rank " + std::to_string(r) + " of " + std::to_string(n);
}

void check_mpi(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  fail("xgrad::distributed: ", who(), ": ", what, " failed: ", std::string(text, len));
}

bool test_all(std::vector<MPI_Request>& requests, const std::string& what) {
  if (requests.empty()) return true;
  int done = 0;
  check_mpi(
      MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE),
      what);
  return done != 0;
}

void wait_all(std::vector<MPI_Request>& requests, const std::string& what) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + g_timeout;
  for (long polls = 0;; ++polls) {
    if (test_all(requests, what)) return;
    const auto now = Clock::now();
    if (now > deadline) {
      int r = 0, n = 1;
      MPI_Comm_rank(MPI_COMM_WORLD, &r);
      MPI_Comm_size(MPI_COMM_WORLD, &n);
      std::string others;
      for (int i = 0; i < n; ++i)
        if (i != r) others += (others.empty() ? "" : ", ") + std::to_string(i);
      fail("xgrad::distributed: ", who(), ": ", what, " got no answer within ",
           std::chrono::duration<double>(g_timeout).count(),
           " s: ", n == 2 ? "rank " + others + " has" : "one of ranks " + others + " has",
           " stopped (died, hung or left the collective); see XGRAD_DISTRIBUTED_TIMEOUT");
    }
    // Poll without pause for 0.1 ms (an all-reduce between processes on one machine takes
    // microseconds), then sleep between polls: 50 us, 0.2 ms after 10 ms, 1 ms after 0.1 s,
    // so that a waiting rank leaves the core to the ranks still computing (mpirun
    // --oversubscribe). Measured here under load: sched_yield() between polls made an
    // all-reduce take 32 ms, 50 us sleeps 0.85 ms, MPI_Wait 0.34 ms.
    const auto waited = now - start;
    if (waited < std::chrono::microseconds(100)) continue;
    std::this_thread::sleep_for(
        std::chrono::microseconds(waited < std::chrono::milliseconds(10)    ? 50
                                  : waited < std::chrono::milliseconds(100) ? 200
                                                                            : 1000));
  }
}

MPI_Datatype mpi_type(Dtype dtype, const char* what) {
  switch (dtype) {
    case Dtype::float32:
      return MPI_FLOAT;
    case Dtype::float64:
      return MPI_DOUBLE;
    case Dtype::int64:
      return MPI_INT64_T;
    case Dtype::boolean:
      break;
  }
  fail(what, ": bool tensors cannot be reduced (convert to int64 first)");
}

}  // namespace detail

}  // namespace xgrad::distributed
