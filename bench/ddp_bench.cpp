// ddp_bench: the step time of data-parallel training with and without overlapping the
// gradient all-reduce with backward (DistributedDataParallel's overlap option), next to the
// same step without any communication. Run under MPI:
//   mpirun -np 2 build/bench/ddp_bench [--steps 20] [--batch 64] [--rounds 3]
// (as root add --allow-run-as-root; with more processes than cores, --oversubscribe).
// Model: an MLP 784-1024-1024-1024-10 in float32 (2.9 M parameters, 11.6 MB of gradients
// per step). Modes, interleaved round after round so that load from other programs hits all
// alike: local (no DDP: what one process's step costs), ddp after backward (overlap off), ddp
// overlapped with bucket_cap_mb 25 (torch's default) and 2 (one bucket per layer). Rank 0
// prints the median step time of each mode over all rounds.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/distributed/collectives.hpp"
#include "xgrad/distributed/ddp.hpp"
#include "xgrad/distributed/init.hpp"
#include "xgrad/xgrad.hpp"

using namespace xgrad;
using Clock = std::chrono::steady_clock;

namespace {

struct Mode {
  const char* name;
  bool ddp;
  bool overlap;
  double bucket_cap_mb;
  std::vector<double> ms;  // per-step times
};

}  // namespace

int main(int argc, char** argv) {
  int steps = 20, batch = 64, rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--steps")
      steps = std::atoi(argv[i + 1]);
    else if (a == "--batch")
      batch = std::atoi(argv[i + 1]);
    else if (a == "--rounds")
      rounds = std::atoi(argv[i + 1]);
  }
  try {
    auto session = distributed::init(argc, argv);
    const int rank = distributed::rank(), world = distributed::world_size();
    set_num_threads(1);
    set_flush_denormal(true);
    std::vector<Mode> modes = {{"local step, no communication", false, false, 25, {}},
                               {"ddp, all-reduce after backward", true, false, 25, {}},
                               {"ddp, overlapped, buckets 25 MB", true, true, 25, {}},
                               {"ddp, overlapped, buckets 2 MB", true, true, 2, {}}};
    manual_seed(1);
    nn::MLP model({784, 1024, 1024, 1024, 10});
    optim::SGD opt(model.parameters(), optim::SGDOptions(0.01));
    manual_seed(100 + static_cast<std::uint64_t>(rank));
    Tensor x = rand({batch, 784});
    std::vector<std::int64_t> lab(static_cast<std::size_t>(batch));
    for (int i = 0; i < batch; ++i) lab[static_cast<std::size_t>(i)] = (i * 3 + rank) % 10;
    Tensor y = from_data(lab.data(), {batch});
    std::size_t buckets2 = 0;
    for (int round = 0; round < rounds; ++round)
      for (Mode& m : modes) {
        std::unique_ptr<distributed::DistributedDataParallel> ddp;
        if (m.ddp) {
          ddp = std::make_unique<distributed::DistributedDataParallel>(
              model,
              distributed::DDPOptions{.bucket_cap_mb = m.bucket_cap_mb, .overlap = m.overlap});
          if (m.bucket_cap_mb == 2) buckets2 = ddp->buckets().size();
        }
        for (int s = -2; s < steps; ++s) {  // two warm-up steps
          distributed::barrier();
          const auto t0 = Clock::now();
          opt.zero_grad();
          cross_entropy(model(x), y).backward();
          opt.step();
          const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
          if (s >= 0) m.ms.push_back(ms);
        }
      }
    if (rank == 0) {
      std::printf(
          "ddp_bench: %d processes, MLP 784-1024-1024-1024-10 float32 (%.1f MB of "
          "gradients), batch %d per process, %d steps x %d rounds; 2 MB buckets: %zu\n",
          world, 4.0 * 2913290 / 1e6, batch, steps, rounds, buckets2);
      for (Mode& m : modes) {
        std::sort(m.ms.begin(), m.ms.end());
        std::printf("  %-34s median %7.2f ms/step  (min %7.2f)\n", m.name, m.ms[m.ms.size() / 2],
                    m.ms.front());
      }
    }
    return 0;
  } catch (const std::exception& e) {
    distributed::abort(1, e.what());
  }
}
