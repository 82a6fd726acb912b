// The bodies of the libFuzzer targets (fuzz/fuzz_*.cpp), shared with the regression test
// (tests/bad_input/fuzz_regression_test.cpp) that replays every seed and every input that
// ever crashed. Each feeds one input to a reader; the reader must return or throw
// xgrad::Error. Anything else (another exception, a crash, a sanitizer report, a leak,
// memory beyond libFuzzer's -rss_limit_mb) is a bug.
#pragma once

#include <unistd.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "xgrad/data/dataloader.hpp"
#include "xgrad/data/dataset.hpp"
#include "xgrad/data/idx.hpp"
#include "xgrad/error.hpp"
#include "xgrad/io/checkpoint.hpp"
#include "xgrad/io/safetensors.hpp"
#include "xgrad/nn/mlp.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/lr_scheduler.hpp"

namespace xgrad::fuzz {

/// A file in the temp folder private to this process, rewritten for every input (the readers
/// under test take paths).
inline std::filesystem::path scratch(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("xgrad_fuzz_" + std::to_string(::getpid()) + "_" + name);
}

/// Writes `size` bytes to `path`, as they are or gzip-compressed. Returns false when the
/// file cannot be written (the input is then skipped).
inline bool write_input(const std::filesystem::path& path, const std::uint8_t* data,
                        std::size_t size, bool gz = false) {
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    if (f == nullptr) return false;
    const bool ok =
        size == 0 || gzwrite(f, data, static_cast<unsigned>(size)) == static_cast<int>(size);
    return gzclose(f) == Z_OK && ok;
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = size == 0 || std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

/// read_idx on the input as a file: plain or gzip, as zlib detects (seeds of both kinds).
inline void idx(const std::uint8_t* data, std::size_t size) {
  const auto path = scratch("idx");
  if (!write_input(path, data, size)) return;
  for (std::optional<int> rank :
       {std::optional<int>{}, std::optional<int>{1}, std::optional<int>{3}})
    try {
      data::IdxArray a = data::read_idx(path, rank);
      // A success must be self-consistent.
      std::uint64_t n = 1;
      for (std::int64_t d : a.dims) n *= static_cast<std::uint64_t>(d);
      if (n != a.data.size()) __builtin_trap();
    } catch (const Error&) {
    }
  std::filesystem::remove(path);
}

/// read_idx on the input gzip-compressed first: mutations of the IDX header and data travel
/// through a valid gzip stream (the size bound of compressed files, the streaming reads).
inline void idx_gz(const std::uint8_t* data, std::size_t size) {
  const auto path = scratch("idx.gz");
  if (!write_input(path, data, size, true)) return;
  try {
    data::read_idx(path);
  } catch (const Error&) {
  }
  std::filesystem::remove(path);
}

/// from_safetensors_bytes on the input, and the header-only metadata reader on it as a file.
inline void safetensors(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    io::from_safetensors_bytes(bytes, "<fuzz>");
  } catch (const Error&) {
  }
  const auto path = scratch("st");
  if (!write_input(path, data, size)) return;
  try {
    io::load_safetensors_metadata(path.string());
  } catch (const Error&) {
  }
  std::filesystem::remove(path);
}

/// A fresh model, optimizer, scheduler and loader, the ones fuzz/make_seeds.cpp saves.
struct CheckpointTarget {
  nn::MLP model{std::vector<std::int64_t>{4, 3, 2}};
  optim::Adam opt{model.parameters(), optim::AdamOptions(1e-2)};
  optim::StepLR sched{opt, 2, 0.5};
  data::TensorDataset ds{zeros({6, 4}), zeros({6}, Dtype::int64)};
  data::DataLoader loader{ds, {.batch_size = 2, .shuffle = true, .seed = 3}};
};

/// load_checkpoint of the input as a file, into CheckpointTarget with every part asked for.
inline void checkpoint(const std::uint8_t* data, std::size_t size) {
  const auto path = scratch("ckpt.safetensors");
  if (!write_input(path, data, size)) return;
  CheckpointTarget t;
  try {
    io::load_checkpoint(path.string(), t.model, t.opt,
                        {.scheduler = &t.sched, .loader = &t.loader});
  } catch (const Error&) {
  }
  std::filesystem::remove(path);
}

}  // namespace xgrad::fuzz
