// Writes the seed corpora of the fuzz targets: small valid files of each kind, under
// OUT/<target>/seeds/. Usage: make_seeds OUT (tests/data/fuzz in the repository).
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "fuzz_targets.hpp"
#include "xgrad/ops/loss.hpp"
#include "xgrad/random.hpp"

namespace fs = std::filesystem;
using namespace xgrad;

namespace {

void write_text(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

std::vector<std::uint8_t> pattern(std::size_t n, unsigned offset) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * 37 + offset) % 256);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seeds OUT\n";
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* t : {"idx", "idx_gz", "safetensors", "checkpoint"})
    fs::create_directories(out / t / "seeds");

  // IDX: labels, images, a rank-2 array; plain for both targets, gzip for the raw one.
  const data::IdxArray labels{{10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}};
  const data::IdxArray images{{3, 4, 4}, pattern(48, 1)};
  const data::IdxArray matrix{{2, 3}, pattern(6, 5)};
  for (const char* t : {"idx", "idx_gz"}) {
    data::write_idx(out / t / "seeds" / "labels.idx1", labels);
    data::write_idx(out / t / "seeds" / "images.idx3", images);
    data::write_idx(out / t / "seeds" / "matrix.idx2", matrix);
  }
  data::write_idx(out / "idx" / "seeds" / "images.idx3.gz", images);
  data::write_idx(out / "idx" / "seeds" / "labels.idx1.gz", labels);

  // safetensors: every dtype, an empty tensor, metadata; and a lone tensor without metadata.
  manual_seed(1);
  write_text(out / "safetensors" / "seeds" / "mixed.safetensors",
             io::to_safetensors_bytes({{"a.weight", randn({2, 3})},
                                       {"a.bias", randn({2}).to(Dtype::float64)},
                                       {"count", arange(0.0, 3.0, 1.0, Dtype::int64)},
                                       {"mask", tensor({1., 0., 1., 1.}, Dtype::boolean)},
                                       {"nothing", zeros({0, 2})}},
                                      {{"format", "pt"}, {"epoch", "3"}}));
  write_text(out / "safetensors" / "seeds" / "single.safetensors",
             io::to_safetensors_bytes({{"w", randn({3})}}));

  // A checkpoint of fuzz::CheckpointTarget after two training steps.
  fuzz::CheckpointTarget t;
  int steps = 0;
  for (const data::Batch& b : t.loader) {  // stops after 2 of the epoch's 3 batches
    t.opt.zero_grad();
    cross_entropy(t.model(b.inputs), b.labels).backward();
    t.opt.step();
    t.sched.step();
    if (++steps == 2) break;
  }
  io::save_checkpoint((out / "checkpoint" / "seeds" / "adam.safetensors").string(), t.model, t.opt,
                      {.scheduler = &t.sched, .loader = &t.loader});
  std::cout << "seeds written under " << out << "\n";
}
