// Helpers shared by the data-layer suites: a per-test temporary directory and raw file writers
// for hand-made (possibly malformed) IDX files, plain or gzip-compressed.
#pragma once

#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace xgrad::testing {

/// A fresh directory under the system temp dir, unique to this process and test case, removed
/// (with its contents) on destruction.
class TempDir {
 public:
  TempDir() {
    const std::string test = boost::unit_test::framework::current_test_case().p_name;
    path_ = std::filesystem::temp_directory_path() /
            ("xgrad_data_" + test + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// Writes `bytes` to `path` as they are, or gzip-compressed when gz is true.
inline void write_bytes(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes,
                        bool gz) {
  if (gz) {
    gzFile f = gzopen(path.string().c_str(), "wb");
    BOOST_REQUIRE_MESSAGE(f != nullptr, "cannot create " << path);
    if (!bytes.empty())
      BOOST_REQUIRE_EQUAL(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
                          static_cast<int>(bytes.size()));
    BOOST_REQUIRE_EQUAL(gzclose(f), Z_OK);
  } else {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    BOOST_REQUIRE_MESSAGE(out.good(), "cannot write " << path);
  }
}

/// The raw bytes of a file.
inline std::vector<std::uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void append_be32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

/// The bytes of an IDX file: magic, dims (big-endian int32), then `data` (however long).
inline std::vector<std::uint8_t> idx_bytes(std::uint32_t magic,
                                           const std::vector<std::int32_t>& dims,
                                           const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> out;
  append_be32(out, magic);
  for (std::int32_t d : dims) append_be32(out, static_cast<std::uint32_t>(d));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

/// n bytes with a recognisable pattern: byte i is (i * 37 + offset) mod 256.
inline std::vector<std::uint8_t> pattern(std::size_t n, unsigned offset = 0) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * 37 + offset) % 256);
  return v;
}

}  // namespace xgrad::testing
