#include "xgrad/viz/render.hpp"

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "viz/subprocess.hpp"
#include "xgrad/error.hpp"
#include "xgrad/io/atomic_file.hpp"

namespace xgrad::viz {

std::string graphviz_dot() {
  return detail::find_program("dot");
}

bool graphviz_available() {
  return !graphviz_dot().empty();
}

namespace {

std::string format_of(const std::string& path, const std::string& format) {
  std::string f = format;
  if (f.empty()) {
    const auto dot = path.rfind('.');
    const auto slash = path.rfind('/');
    if (dot != std::string::npos && (slash == std::string::npos || dot > slash))
      f = path.substr(dot + 1);
  }
  for (char& c : f) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (f != "svg" && f != "png" && f != "pdf")
    fail("render: cannot tell which image format to write to '", path,
         "': name it .svg, .png or .pdf, or pass the format");
  return f;
}

std::string temp_dir() {
  const char* t = std::getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

// A temporary file named `near` + a random suffix (mkstemp), removed by the destructor unless
// released.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& near) {
    std::string tmpl = near + ".tmp.XXXXXX";
    const int fd = ::mkstemp(tmpl.data());
    if (fd < 0) fail("render: cannot create a temporary file next to '", near, "'");
    ::close(fd);
    path = tmpl;
  }
  ~TempFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

void render(const std::string& dot_text, const std::string& path, const std::string& format) {
  const std::string fmt = format_of(path, format);
  const std::string dot = graphviz_dot();
  if (dot.empty())
    fail("render: Graphviz's `dot` program is not on PATH, so '", path,
         "' cannot be drawn. Install Graphviz (Debian/Ubuntu: apt-get install graphviz; "
         "Fedora: dnf install graphviz; macOS: brew install graphviz), or write the DOT text "
         "with write_dot and render it elsewhere");
  // dot reads the text from a temporary file and draws into another; the picture then goes
  // to `path` through io::write_file_atomically, only when dot succeeded: no half-written
  // picture is left behind, and a device such as /dev/stdout gets the bytes written into it.
  TempFile input(temp_dir() + "/xgrad-graph.dot");
  io::write_file_atomically(input.path, dot_text);
  TempFile output(temp_dir() + "/xgrad-picture." + fmt);
  const auto r = detail::run_process({dot, "-T" + fmt, input.path, "-o", output.path});
  if (r.exit_code != 0) {
    std::string msg = r.err.substr(0, 2000);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    fail("render: `dot -T", fmt, "` failed (exit code ", r.exit_code, ") drawing '", path,
         "': ", msg.empty() ? "no message" : msg);
  }
  std::ifstream f(output.path, std::ios::binary);
  if (!f) fail("render: `dot -T", fmt, "` wrote no picture for '", path, "'");
  try {
    io::write_file_atomically(path, std::string(std::istreambuf_iterator<char>(f), {}));
  } catch (const Error& e) {
    fail("render: ", e.what());
  }
}

}  // namespace xgrad::viz
