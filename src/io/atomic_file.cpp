#include "xgrad/io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "xgrad/error.hpp"

namespace xgrad::io {

void write_file_atomically(const std::string& path, std::string_view content) {
  std::string tmpl = path + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0)
    fail("write_file_atomically: cannot create a temporary file next to '", path,
         "': ", std::strerror(errno));
  const char* p = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    ssize_t w = ::write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      ::unlink(tmpl.c_str());
      fail("write_file_atomically: writing '", path, "' failed: ", std::strerror(e));
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  ::fchmod(fd, 0644);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmpl.c_str());
    fail("write_file_atomically: flushing '", path, "' failed: ", std::strerror(e));
  }
  if (std::rename(tmpl.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmpl.c_str());
    fail("write_file_atomically: renaming onto '", path, "' failed: ", std::strerror(e));
  }
}

}  // namespace xgrad::io
