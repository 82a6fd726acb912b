// fashion_mnist.hpp - a small, self-contained reader for the gzip'd IDX files of
// (Fashion-)MNIST, shared by the benchmarks that must not depend on the xgrad core: the libtorch
// twins (torch_common.hpp) and the hand-written floor (floor_mlp.cpp). Pixels stay uint8.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

// ---------------------------------------------------------------------------
// IDX reader (gzip-compressed, as distributed for (Fashion-)MNIST)
// ---------------------------------------------------------------------------

// RAII wrapper for a zlib gzFile.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb")) {
    if (f_ == nullptr) throw std::runtime_error("cannot open " + path);
    gzbuffer(f_, 1 << 16);
  }
  ~GzReader() { gzclose(f_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads exactly `n` bytes or throws.
  void read_exact(void* dst, std::size_t n) {
    auto* p = static_cast<std::uint8_t*>(dst);
    while (n > 0) {
      // gzread takes an unsigned count; read in chunks of at most 1 GiB.
      const unsigned want = static_cast<unsigned>(std::min<std::size_t>(n, std::size_t{1} << 30));
      const int got = gzread(f_, p, want);
      if (got <= 0) {
        int err = 0;
        const char* msg = got < 0 ? gzerror(f_, &err) : "unexpected end of file";
        throw std::runtime_error(path_ + ": " + msg);
      }
      p += got;
      n -= static_cast<std::size_t>(got);
    }
  }

  // True if no decompressed bytes are left.
  bool at_eof() {
    std::uint8_t extra = 0;
    return gzread(f_, &extra, 1) == 0;
  }

 private:
  std::string path_;
  gzFile f_;
};

inline std::uint32_t be32(const std::uint8_t* b) {
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
         std::uint32_t{b[3]};
}

// An IDX file of unsigned bytes: dims plus the raw payload.
struct IdxU8 {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> data;
};

// Parses a gzip'd IDX file whose element type is uint8 (type code 0x08) and
// whose rank equals `expected_rank`.  The header is read first, so the payload
// is decompressed straight into a buffer of the final size (no extra copy).
inline IdxU8 load_idx_u8(const std::string& path, std::size_t expected_rank) {
  GzReader in(path);
  std::uint8_t magic[4];
  in.read_exact(magic, sizeof magic);
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08) {
    throw std::runtime_error(path + ": not a uint8 IDX file");
  }
  const std::size_t rank = magic[3];
  if (rank != expected_rank) throw std::runtime_error(path + ": unexpected IDX rank");

  IdxU8 idx;
  std::size_t count = 1;
  for (std::size_t d = 0; d < rank; ++d) {
    std::uint8_t dim[4];
    in.read_exact(dim, sizeof dim);
    idx.dims.push_back(be32(dim));
    count *= idx.dims.back();
  }
  idx.data.resize(count);
  in.read_exact(idx.data.data(), count);
  if (!in.at_eof()) throw std::runtime_error(path + ": trailing data after payload");
  return idx;
}

// A split of the data set, pixels kept as uint8 until a batch is built.
struct Dataset {
  std::int64_t n = 0;
  std::int64_t features = 0;         // 28 * 28
  std::vector<std::uint8_t> pixels;  // n * features
  std::vector<std::uint8_t> labels;  // n
};

inline Dataset load_split(const std::string& dir, const std::string& prefix) {
  IdxU8 img = load_idx_u8(dir + "/" + prefix + "-images-idx3-ubyte.gz", 3);
  IdxU8 lab = load_idx_u8(dir + "/" + prefix + "-labels-idx1-ubyte.gz", 1);
  if (img.dims[0] != lab.dims[0]) {
    throw std::runtime_error(prefix + ": image/label count mismatch");
  }
  Dataset ds;
  ds.n = img.dims[0];
  ds.features = std::int64_t{img.dims[1]} * img.dims[2];
  ds.pixels = std::move(img.data);
  ds.labels = std::move(lab.data);
  return ds;
}

}  // namespace bench
