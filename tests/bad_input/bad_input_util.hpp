// Helpers of the bad-input suites: loading a file in a forked child to measure the memory and
// time it takes, and hand-made malformed files (gzip bombs, safetensors headers).
#pragma once

#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace xgrad::testing {

/// What a load run in a child process did: how it ended, its xgrad::Error message, its peak
/// resident memory (ru_maxrss from wait4), the resident memory it started from, and its wall
/// time.
struct ChildLoad {
  enum Outcome { returned, threw_error, threw_other, died } outcome = died;
  std::string message;
  std::int64_t max_rss_bytes = 0;
  std::int64_t start_rss_bytes = 0;
  double seconds = 0;
  /// The memory the load itself took at its peak: the peak less what the child started with
  /// (the pages it shares with this process since the fork; large under AddressSanitizer).
  std::int64_t load_rss_bytes() const { return max_rss_bytes - start_rss_bytes; }
};

/// Resets this process's peak RSS to its current RSS (Linux >= 4.0: "5" into
/// /proc/self/clear_refs) and returns the current RSS in bytes (VmRSS), 0 when unknown.
inline std::int64_t reset_peak_rss() {
  std::ofstream("/proc/self/clear_refs") << "5";
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "… kB"
  return 0;
}

/// Runs `load` in a forked child (fork, load, _exit) and reports how it went.
inline ChildLoad load_in_child(const std::function<void()>& load) {
  int fds[2];
  BOOST_REQUIRE(::pipe(fds) == 0);
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    const std::int64_t start_rss = reset_peak_rss();
    int code = 0;
    std::string text;
    try {
      load();
    } catch (const Error& e) {
      code = 1;
      text = e.what();
    } catch (const std::exception& e) {
      code = 2;
      text = e.what();
    }
    text.insert(0, reinterpret_cast<const char*>(&start_rss), sizeof start_rss);
    for (std::size_t at = 0; at < text.size();) {
      const ssize_t w = ::write(fds[1], text.data() + at, text.size() - at);
      if (w <= 0) break;
      at += static_cast<std::size_t>(w);
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  ChildLoad r;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) r.message.append(buf, n);
  ::close(fds[0]);
  if (r.message.size() >= sizeof r.start_rss_bytes) {
    std::memcpy(&r.start_rss_bytes, r.message.data(), sizeof r.start_rss_bytes);
    r.message.erase(0, sizeof r.start_rss_bytes);
  }
  int status = 0;
  struct rusage usage {};
  BOOST_REQUIRE(::wait4(pid, &status, 0, &usage) == pid);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.max_rss_bytes = static_cast<std::int64_t>(usage.ru_maxrss) * 1024;  // Linux: KiB
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    r.outcome = code == 0   ? ChildLoad::returned
                : code == 1 ? ChildLoad::threw_error
                            : ChildLoad::threw_other;
  }
  return r;
}

/// The peak memory every refusal must stay under.
inline constexpr std::int64_t kMaxRefusalRss = std::int64_t{64} << 20;

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAsan = true;  // the test process alone is over 64 MiB
#else
inline constexpr bool kUnderAsan = false;
#endif

/// Asserts that `load`, run in a child, throws xgrad::Error whose message holds every one of
/// `words`, within `max_seconds`, and that the memory the load takes stays under 64 MiB (and
/// without AddressSanitizer the child's whole peak RSS too). Returns the message.
inline std::string expect_refused(const std::function<void()>& load,
                                  const std::vector<std::string>& words, double max_seconds = 5.0) {
  const ChildLoad r = load_in_child(load);
  BOOST_TEST_MESSAGE("refused in " << r.seconds << " s, peak RSS " << (r.max_rss_bytes >> 10)
                                   << " KiB (the load: " << (r.load_rss_bytes() >> 10)
                                   << " KiB): " << r.message);
  BOOST_CHECK_MESSAGE(r.outcome == ChildLoad::threw_error,
                      "expected xgrad::Error, got outcome " << r.outcome << ": " << r.message);
  for (const auto& w : words)
    BOOST_CHECK_MESSAGE(r.message.find(w) != std::string::npos,
                        "message '" << r.message << "' lacks '" << w << "'");
  BOOST_CHECK_MESSAGE(r.load_rss_bytes() < kMaxRefusalRss,
                      "the load took " << (r.load_rss_bytes() >> 20) << " MiB, not under 64 MiB");
  if (!kUnderAsan)
    BOOST_CHECK_MESSAGE(r.max_rss_bytes < kMaxRefusalRss,
                        "peak RSS " << (r.max_rss_bytes >> 20) << " MiB is not under 64 MiB");
  BOOST_CHECK_MESSAGE(r.seconds < max_seconds,
                      "took " << r.seconds << " s, more than " << max_seconds << " s");
  return r.message;
}

/// A gzip member holding `bytes` (zlib's gzip wrapper, best compression).
inline std::string gzip_member(const std::string& bytes) {
  z_stream z{};
  BOOST_REQUIRE(deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) ==
                Z_OK);
  std::string out(deflateBound(&z, bytes.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  BOOST_REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

/// Big-endian uint32.
inline std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

/// Writes a gzip bomb to `path`: gzip members concatenated (zlib reads them as one stream)
/// inflating to `header` followed by `gib` GiB of zeros, from a file of about 1 MiB per GiB.
/// Returns the file's size.
inline std::uint64_t write_gzip_bomb(const std::filesystem::path& path, const std::string& header,
                                     int gib) {
  const std::string mib(std::size_t{1} << 20, '\0');
  const std::string zeros = gzip_member(mib);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << gzip_member(header);
  for (int i = 0; i < 1024 * gib; ++i) f << zeros;
  f.close();
  BOOST_REQUIRE(f.good());
  return std::filesystem::file_size(path);
}

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
  BOOST_REQUIRE(f.good());
}

/// The bytes of a safetensors file with the given header text and data section (the header
/// padded with spaces to a multiple of 8 bytes).
inline std::string safetensors_bytes(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string out;
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

}  // namespace xgrad::testing
