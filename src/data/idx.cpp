#include "xgrad/data/idx.hpp"

#include <zlib.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <system_error>

#include "xgrad/error.hpp"

namespace xgrad::data {

namespace {

/// The most bytes one byte of deflate data can inflate to (zlib's documented bound: a
/// 258-byte match coded in 2 bits). Gzip headers and trailers only lower the real ratio.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

std::string quoted(const std::filesystem::path& p) {
  return "'" + p.string() + "'";
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

std::string hex8(std::uint32_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", v & 0xFFu);
  return buf;
}

/// Name of an IDX element type code, or nullptr when the code is not an IDX type.
const char* idx_type_name(std::uint32_t code) {
  switch (code) {
    case 0x08:
      return "uint8";
    case 0x09:
      return "int8";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return nullptr;
  }
}

std::uint32_t load_be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

void store_be32(unsigned char* p, std::uint32_t v) {
  p[0] = static_cast<unsigned char>(v >> 24);
  p[1] = static_cast<unsigned char>(v >> 16);
  p[2] = static_cast<unsigned char>(v >> 8);
  p[3] = static_cast<unsigned char>(v);
}

/// Asks the kernel to back the 2 MiB-aligned part of [p, p + bytes) with transparent huge pages
/// (granted in THP's "madvise" mode, Debian's default, and in "always"). A shuffled batch reads
/// rows anywhere in the training images (47 MB for Fashion-MNIST): with 4 KiB pages nearly
/// every row cost a TLB miss. Advice only: a kernel that refuses changes nothing.
void advise_huge_pages(void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t k2M = std::uintptr_t{1} << 21;
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t begin = (at + k2M - 1) & ~(k2M - 1), end = (at + bytes) & ~(k2M - 1);
  if (end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

/// A gzFile opened for reading, closed on destruction. read() returns how many bytes it got
/// (fewer than asked only at end of input) and remembers whether the gzip stream was cut short.
class GzReader {
 public:
  explicit GzReader(const std::filesystem::path& path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
      fail("read_idx: cannot open ", quoted(path), ": no such file");
    if (std::filesystem::is_directory(path, ec))
      fail("read_idx: cannot open ", quoted(path), ": it is a directory");
    // Not a regular file (a FIFO, a device): no size to bound the data by.
    file_size_ = std::filesystem::is_regular_file(path, ec)
                     ? std::filesystem::file_size(path, ec)
                     : std::numeric_limits<std::uint64_t>::max();
    if (ec) fail("read_idx: cannot open ", quoted(path), ": ", ec.message());
    errno = 0;
    file_ = gzopen(path.string().c_str(), "rb");
    if (file_ == nullptr)
      fail("read_idx: cannot open ", quoted(path), ": ",
           errno != 0 ? std::strerror(errno) : "out of memory");
    gzbuffer(file_, 1 << 17);
  }
  ~GzReader() {
    if (file_ != nullptr) gzclose(file_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  std::size_t read(void* buf, std::size_t n) {
    auto* out = static_cast<unsigned char*>(buf);
    std::size_t got = 0;
    while (got < n) {
      const auto chunk = static_cast<unsigned>(std::min<std::size_t>(n - got, 1u << 30));
      const int r = gzread(file_, out + got, chunk);
      if (r < 0) corrupt();
      got += static_cast<std::size_t>(r);
      if (static_cast<unsigned>(r) < chunk) break;
    }
    int errnum = Z_OK;
    gzerror(file_, &errnum);
    if (errnum == Z_BUF_ERROR)
      stream_cut_ = true;  // "unexpected end of file"
    else if (errnum != Z_OK)
      corrupt();
    return got;
  }

  /// True once zlib found the compressed stream ending in the middle.
  bool stream_cut() const { return stream_cut_; }
  /// True when the file is plain (not gzip); known once something has been read.
  bool direct() const { return gzdirect(file_) == 1; }
  /// The size of the file on disk (compressed size for a gzip file); UINT64_MAX when it is
  /// not a regular file.
  std::uint64_t file_size() const { return file_size_; }

 private:
  [[noreturn]] void corrupt() {
    int errnum = Z_OK;
    const char* msg = gzerror(file_, &errnum);
    std::string text = errnum == Z_ERRNO ? std::strerror(errno)
                       : msg != nullptr  ? msg
                                         : "read error";
    // zlib prefixes its messages with the path; the message names the file already.
    const std::string prefix = path_.string() + ": ";
    if (text.starts_with(prefix)) text.erase(0, prefix.size());
    fail("read_idx: cannot read ", quoted(path_), ": ", text,
         errnum == Z_DATA_ERROR ? " (corrupt gzip data)" : "");
  }

  std::filesystem::path path_;
  gzFile file_ = nullptr;
  std::uint64_t file_size_ = 0;
  bool stream_cut_ = false;
};

[[noreturn]] void truncated(const std::filesystem::path& path, std::uint64_t expected,
                            std::uint64_t got, const std::string& what, bool stream_cut) {
  fail("read_idx: ", quoted(path), " is truncated: expected ", expected, " bytes (", what,
       "), got ", got, stream_cut ? "; the gzip stream itself ends early" : "");
}

}  // namespace

IdxArray read_idx(const std::filesystem::path& path, std::optional<int> expected_rank) {
  GzReader in(path);

  // Magic number: 0x0000TTRR.
  std::array<unsigned char, 4> head{};
  std::size_t got = in.read(head.data(), head.size());
  if (got < head.size()) truncated(path, 4, got, "a 4-byte magic number", in.stream_cut());
  const std::uint32_t magic = load_be32(head.data());
  const std::uint32_t type = (magic >> 8) & 0xFFu;
  const int rank = static_cast<int>(magic & 0xFFu);
  const std::string expected = expected_rank ? hex32(idx_magic(*expected_rank))
                                             : std::string("0x000008RR (uint8, RR = rank >= 1)");
  const char* type_name = idx_type_name(type);
  if ((magic >> 16) != 0 || type_name == nullptr || rank == 0)
    fail("read_idx: ", quoted(path), " has a wrong magic number: expected ", expected, ", found ",
         hex32(magic), " (not an IDX file?)");
  if (type != kIdxUint8)
    fail("read_idx: ", quoted(path), " has unsupported element type ", hex8(type), " (", type_name,
         "); only ", hex8(kIdxUint8), " (uint8) is supported");
  if (expected_rank && rank != *expected_rank)
    fail("read_idx: ", quoted(path), " has a wrong magic number: expected ", expected, ", found ",
         hex32(magic), " (rank ", rank, " instead of ", *expected_rank, ")");

  // Dimensions: rank big-endian int32.
  const std::uint64_t header_bytes = 4 + 4 * static_cast<std::uint64_t>(rank);
  std::vector<unsigned char> dim_bytes(4 * static_cast<std::size_t>(rank));
  got = in.read(dim_bytes.data(), dim_bytes.size());
  if (got < dim_bytes.size())
    truncated(path, header_bytes, 4 + got,
              "a " + std::to_string(header_bytes) + "-byte header of " + std::to_string(rank) +
                  " dimensions",
              in.stream_cut());
  IdxArray out;
  out.dims.resize(static_cast<std::size_t>(rank));
  std::uint64_t numel = 1;
  constexpr std::uint64_t kMaxElements = std::uint64_t{1} << 48;
  for (int i = 0; i < rank; ++i) {
    const auto d = static_cast<std::int32_t>(load_be32(dim_bytes.data() + 4 * i));
    if (d < 0) fail("read_idx: ", quoted(path), " has a negative dimension ", d, " at index ", i);
    out.dims[static_cast<std::size_t>(i)] = d;
    if (d != 0 && numel > kMaxElements / static_cast<std::uint64_t>(d))
      fail("read_idx: ", quoted(path), " has dimensions whose product is too large");
    numel *= static_cast<std::uint64_t>(d);
  }

  // The most bytes the file can hold, checked before anything is allocated: a plain file
  // holds its size, a gzip file at most kMaxDeflateRatio times its size.
  const std::uint64_t file_bytes = in.file_size();
  const std::uint64_t total = header_bytes + numel;
  const std::string layout = std::to_string(header_bytes) + "-byte header + " +
                             std::to_string(numel) + " data bytes for dims " +
                             format_shape(out.dims);
  if (in.direct()) {
    if (total > file_bytes) truncated(path, total, file_bytes, layout, false);
  } else if (file_bytes < std::numeric_limits<std::uint64_t>::max() / kMaxDeflateRatio &&
             total > file_bytes * kMaxDeflateRatio) {
    fail("read_idx: ", quoted(path), " claims ", total, " bytes (", layout,
         "), but a gzip file of ", file_bytes, " bytes can hold at most ",
         file_bytes * kMaxDeflateRatio, " (deflate expands at most ", kMaxDeflateRatio,
         ":1): corrupt header or gzip bomb");
  }

  // Data: streamed straight into its final buffer. reserve() only maps address space; pages
  // are touched as data arrives, so a gzip stream ending early costs what it held, not what
  // the header claimed.
  try {
    out.data.reserve(static_cast<std::size_t>(numel));
    advise_huge_pages(out.data.data(), out.data.capacity());  // before resize() touches pages
  } catch (const std::bad_alloc&) {
    fail("read_idx: ", quoted(path), ": cannot allocate ", numel, " bytes for dims ",
         format_shape(out.dims));
  }
  constexpr std::uint64_t kChunk = std::uint64_t{1} << 24;
  std::uint64_t have = 0;
  while (have < numel) {
    const std::uint64_t want = std::min(numel - have, kChunk);
    out.data.resize(static_cast<std::size_t>(have + want));  // within capacity: no copy
    const std::size_t r = in.read(out.data.data() + have, static_cast<std::size_t>(want));
    have += r;
    if (r < want) truncated(path, total, header_bytes + have, layout, in.stream_cut());
  }

  // Nothing may follow the data: extra bytes mean the header does not describe the file.
  // Counted up to kMaxTrailing only: a gzip bomb may inflate to gigabytes of trailing zeros.
  constexpr std::uint64_t kMaxTrailing = std::uint64_t{1} << 20;
  std::array<unsigned char, 4096> rest{};
  std::uint64_t extra = 0;
  while (extra <= kMaxTrailing) {
    const std::size_t r = in.read(rest.data(), rest.size());
    extra += r;
    if (r < rest.size()) break;
  }
  if (in.stream_cut())
    fail("read_idx: ", quoted(path), " is truncated: all ", header_bytes + numel,
         " bytes are there but the gzip stream ends before its checksum");
  if (extra > kMaxTrailing)
    fail("read_idx: ", quoted(path), " has more than ", kMaxTrailing, " trailing bytes after the ",
         header_bytes + numel, " bytes its header ", format_shape(out.dims), " describes");
  if (extra != 0)
    fail("read_idx: ", quoted(path), " has ", extra, " trailing bytes after the ",
         header_bytes + numel, " bytes its header ", format_shape(out.dims), " describes");
  return out;
}

void write_idx(const std::filesystem::path& path, const IdxArray& array) {
  const auto rank = array.dims.size();
  check(rank >= 1 && rank <= 255, "write_idx: ", quoted(path), ": rank must be in 1..255, got ",
        rank);
  std::uint64_t numel = 1;
  for (std::int64_t d : array.dims) {
    check(d >= 0 && d <= INT32_MAX, "write_idx: ", quoted(path), ": dimension ", d, " of dims ",
          format_shape(array.dims), " is out of range 0..2147483647");
    numel *= static_cast<std::uint64_t>(d);
  }
  check(numel == array.data.size(), "write_idx: ", quoted(path), ": dims ",
        format_shape(array.dims), " hold ", numel, " elements, but data has ", array.data.size());

  std::vector<unsigned char> header(4 + 4 * rank);
  store_be32(header.data(), idx_magic(static_cast<int>(rank)));
  for (std::size_t i = 0; i < rank; ++i)
    store_be32(header.data() + 4 + 4 * i, static_cast<std::uint32_t>(array.dims[i]));

  // "wbT" writes plain bytes through the same gz API.
  const bool gz = path.extension() == ".gz";
  errno = 0;
  gzFile f = gzopen(path.string().c_str(), gz ? "wb" : "wbT");
  if (f == nullptr)
    fail("write_idx: cannot open ", quoted(path),
         " for writing: ", errno != 0 ? std::strerror(errno) : "out of memory");
  bool ok = gzwrite(f, header.data(), static_cast<unsigned>(header.size())) ==
            static_cast<int>(header.size());
  for (std::size_t off = 0; ok && off < array.data.size();) {
    const auto chunk =
        static_cast<unsigned>(std::min<std::size_t>(array.data.size() - off, 1u << 30));
    ok = gzwrite(f, array.data.data() + off, chunk) == static_cast<int>(chunk);
    off += chunk;
  }
  const int close_rc = gzclose(f);
  check(ok && close_rc == Z_OK, "write_idx: cannot write ", quoted(path));
}

}  // namespace xgrad::data
