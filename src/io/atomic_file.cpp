#include "xgrad/io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "xgrad/error.hpp"

namespace xgrad::io {
namespace {

constexpr const char* kOp = "write_file_atomically";

// Writes all of `content` to `fd`; returns 0 or the errno of the failed write.
int write_all(int fd, std::string_view content) {
  const char* p = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    const ssize_t w = ::write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  return 0;
}

// Straight into an existing device, FIFO or socket: there is nothing to replace atomically.
void write_into_special(const std::string& path, std::string_view content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) fail(kOp, ": cannot open '", path, "' for writing: ", std::strerror(errno));
  const int e = write_all(fd, content);
  ::close(fd);
  if (e != 0) fail(kOp, ": writing '", path, "' failed: ", std::strerror(e));
}

}  // namespace

void write_file_atomically(const std::string& given, std::string_view content) {
  std::string path = given;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    // Replace the link's target, not the link.
    char resolved[PATH_MAX];
    if (::realpath(path.c_str(), resolved) != nullptr) path = resolved;
  }
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail(kOp, ": '", given, "' is a folder, not a file");
    if (!S_ISREG(st.st_mode)) return write_into_special(path, content);
  }

  std::string tmpl = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0)
    fail(kOp, ": cannot create a temporary file next to '", given, "': ", std::strerror(errno));
  if (const int e = write_all(fd, content); e != 0) {
    ::close(fd);
    ::unlink(tmpl.c_str());
    fail(kOp, ": writing '", given, "' failed: ", std::strerror(e));
  }
  ::fchmod(fd, 0644);
  const int synced = ::fsync(fd) == 0 ? 0 : errno;
  const int closed = ::close(fd) == 0 ? 0 : errno;
  if (synced != 0 || closed != 0) {
    const int e = synced != 0 ? synced : closed;
    ::unlink(tmpl.c_str());
    fail(kOp, ": flushing '", given, "' failed: ", std::strerror(e));
  }
  if (std::rename(tmpl.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmpl.c_str());
    fail(kOp, ": renaming onto '", given, "' failed: ", std::strerror(e));
  }
}

}  // namespace xgrad::io
