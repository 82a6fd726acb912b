// Reading (and writing) IDX files, the format MNIST and Fashion-MNIST ship in.
//
// An IDX file is a 4-byte big-endian magic number 0x0000TTRR (TT = element type, RR = rank),
// then RR big-endian int32 dimensions, then the elements in row-major order. xgrad handles the
// unsigned-byte type TT = 0x08, which covers every MNIST-style file:
//   0x00000803  images, uint8 [N, rows, cols]
//   0x00000801  labels, uint8 [N]
// Files may be gzip-compressed (*.gz) or plain: zlib reads both transparently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

namespace xgrad::data {

/// The contents of an IDX file: its dimensions (outermost first, e.g. {60000, 28, 28}) and its
/// elements in row-major order (data.size() == product of dims).
struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> data;
};

/// IDX type code of unsigned bytes, the one element type read_idx supports.
inline constexpr std::uint8_t kIdxUint8 = 0x08;
/// Magic number of an IDX file of uint8 elements with the given rank: 0x00000800 | rank.
constexpr std::uint32_t idx_magic(int rank) {
  return (std::uint32_t{kIdxUint8} << 8) | static_cast<std::uint32_t>(rank);
}

/// Reads the IDX file at `path`, gzip-compressed or plain (zlib detects which).
///
/// When `expected_rank` is given, the magic number must be exactly idx_magic(*expected_rank)
/// (0x00000803 for images, 0x00000801 for labels); otherwise any rank >= 1 is accepted.
/// Returns dims (each >= 0) and dims[0] * dims[1] * ... bytes of data.
///
/// Throws xgrad::Error, the message naming the file, when:
///  - the file is missing or cannot be opened ("cannot open ...");
///  - the magic number is wrong: its first two bytes are not zero, the type byte is not an IDX
///    type, the rank is 0, or the rank differs from expected_rank ("wrong magic number:
///    expected 0x00000803, found 0x...");
///  - the element type is a valid IDX type other than uint8, e.g. float32 0x0D ("unsupported
///    element type ...");
///  - a dimension is negative or their product overflows;
///  - the header claims more bytes than the file can hold, checked before any allocation: a
///    plain file holds its size ("truncated: expected N bytes, got M" with M the file size), a
///    gzip file at most 1032 times its size, deflate's largest expansion ("claims N bytes, but
///    a gzip file of S bytes can hold at most M": a corrupt header or a gzip bomb);
///  - the file ends early ("truncated: expected N bytes, got M"), including a gzip stream that
///    is itself cut short, or holds bytes after the data ("... trailing bytes"; counted up to
///    1 MiB, beyond that "more than 1048576 trailing bytes");
///  - zlib reports corrupt compressed data.
///
/// Memory: the data is streamed into its final buffer (no copy), so the reader's peak is about
/// the data it actually read, and never more than the file can hold.
IdxArray read_idx(const std::filesystem::path& path, std::optional<int> expected_rank = {});

/// Writes `array` as an IDX file of uint8 elements (magic idx_magic(dims.size())), gzip-
/// compressed when `path` ends in ".gz", plain otherwise. Overwrites an existing file.
/// Throws xgrad::Error when dims is empty, has a negative entry or more than 255 entries, a
/// dimension exceeds INT32_MAX, data.size() differs from the product of dims, or the file
/// cannot be written.
void write_idx(const std::filesystem::path& path, const IdxArray& array);

}  // namespace xgrad::data
