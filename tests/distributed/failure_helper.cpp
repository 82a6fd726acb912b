// A data-parallel training loop whose rank 1 fails at step 3, for failure_mpi_test:
//   failure_helper kill    rank 1 kills itself (SIGKILL): mpirun stops the job and names it
//   failure_helper throw   rank 1 throws: it reports the error and aborts the job
//   failure_helper hang    rank 1 stops talking: rank 0's all-reduce times out (2 s) and
//                          names rank 1
// Every other run of the loop ends normally (exit code 0).
#include <chrono>
#include <csignal>
#include <iostream>
#include <string>
#include <thread>

#include "xgrad/distributed/ddp.hpp"
#include "xgrad/distributed/init.hpp"
#include "xgrad/xgrad.hpp"

using namespace xgrad;

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    auto session = distributed::init(argc, argv, {.timeout = std::chrono::seconds(2)});
    const int rank = distributed::rank();
    manual_seed(1);
    nn::MLP model({20, 64, 10});
    distributed::DistributedDataParallel ddp(model);
    optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
    for (int step = 0; step < 20; ++step) {
      if (rank == 1 && step == 3) {
        if (mode == "kill") std::raise(SIGKILL);
        if (mode == "throw") fail("failure_helper: rank 1 failed on purpose at step 3");
        if (mode == "hang") std::this_thread::sleep_for(std::chrono::seconds(60));
      }
      Tensor x = randn({8, 20});
      opt.zero_grad();
      ddp(x).pow(2.0).mean().backward();
      opt.step();
      if (rank == 0) std::cout << "step " << step << std::endl;
    }
    return 0;
  } catch (const std::exception& e) {
    distributed::abort(1, e.what());
  }
}
