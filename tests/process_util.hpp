// Helpers for tests that run the project's programs (xgrad-train, xgrad-descent, examples) or
// write files: running a command, temporary paths and folders, reading files back.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace xgrad::testing {

/// What a program run gave: its exit code (-1 when it did not exit normally) and output.
struct Run {
  int code = -1;
  std::string out, err;
};

/// The whole content of a file, byte for byte ("" when it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

/// A path in the temp folder unique to this process: ctest runs the cases of one suite in
/// parallel processes, so fixed names would collide. The process id goes before the
/// extension ("graph.svg" -> "graph_123.svg"): the tools choose a format by it.
inline std::filesystem::path temp_path(const std::string& name) {
  const auto dot = name.rfind('.');
  const std::string pid = "_" + std::to_string(::getpid());
  return std::filesystem::temp_directory_path() /
         (dot == std::string::npos ? name + pid : name.substr(0, dot) + pid + name.substr(dot));
}

/// Runs a shell command line, capturing stdout and stderr.
inline Run run_command(const std::string& command) {
  const auto out = temp_path("xgrad_run_out"), err = temp_path("xgrad_run_err");
  const std::string cmd = command + " >" + out.string() + " 2>" + err.string();
  const int status = std::system(cmd.c_str());
  Run r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

/// A fresh empty folder under the temp folder, removed with everything in it at the end of
/// the scope.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "xgrad_test.XXXXXX").string();
    BOOST_REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

/// The names in a folder, sorted (without "." and "..").
inline std::vector<std::string> list_dir(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

/// True when Graphviz's `dot` is on PATH.
inline bool have_dot() {
  return std::system("command -v dot >/dev/null 2>&1") == 0;
}

/// Number of '\n'-terminated lines.
inline int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace xgrad::testing
