#include "xgrad/io/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
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

// True for the names mkstemp makes from "<base>.tmp.XXXXXX": the base, ".tmp.", then exactly
// six letters or digits.
bool is_temp_name(std::string_view name, std::string_view base) {
  constexpr std::string_view kTmp = ".tmp.";
  if (name.size() != base.size() + kTmp.size() + 6 || !name.starts_with(base) ||
      name.substr(base.size(), kTmp.size()) != kTmp)
    return false;
  for (char c : name.substr(base.size() + kTmp.size()))
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  return true;
}

// Removes the temporary files that earlier writes of `path` left behind when their process
// was killed between creating the temporary file and renaming it. Only regular files named
// exactly "<name of path>.tmp.XXXXXX" in the same folder are candidates, and a candidate is
// removed only when no process holds its lock: a live writer locks its temporary file
// (flock) until the rename, a killed one's lock died with it. Failures are ignored: cleaning
// up is a courtesy, the write itself does not depend on it.
void remove_stale_temps(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (const dirent* e = ::readdir(d)) {
    if (!is_temp_name(e->d_name, base)) continue;
    const int fd = ::openat(::dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::flock(fd, LOCK_EX | LOCK_NB) == 0)
      ::unlinkat(::dirfd(d), e->d_name, 0);
    ::close(fd);
  }
  ::closedir(d);
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

  remove_stale_temps(path);
  std::string tmpl = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0)
    fail(kOp, ": cannot create a temporary file next to '", given, "': ", std::strerror(errno));
  // Held until the rename, so that another writer's remove_stale_temps leaves this file alone.
  ::flock(fd, LOCK_EX | LOCK_NB);
  auto give_up = [&](const char* what, int e) {
    ::unlink(tmpl.c_str());
    ::close(fd);
    fail(kOp, ": ", what, " '", given, "' failed: ", std::strerror(e));
  };
  if (const int e = write_all(fd, content); e != 0) give_up("writing", e);
  ::fchmod(fd, 0644);
  if (::fsync(fd) != 0) give_up("flushing", errno);
  if (std::rename(tmpl.c_str(), path.c_str()) != 0) give_up("renaming onto", errno);
  // The data is on disk (fsync above); a failing close cannot lose it any more.
  ::close(fd);
}

}  // namespace xgrad::io
