// Running a helper program (Graphviz's dot, binutils' addr2line) and collecting its output.
// Internal to the library: used by viz::render and by anomaly detection's call-site lookup.
#pragma once

#include <string>
#include <vector>

namespace xgrad::viz::detail {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out, err;
};

/// The full path of `program` found on PATH (as a shell would), or "" when it is not there.
std::string find_program(const std::string& program);

/// Runs argv[0] (a full path) with the arguments argv[1..], stdin from /dev/null, and returns
/// its exit code, stdout and stderr. Uses posix_spawn (no fork of a large process; safe with
/// threads). Throws xgrad::Error when the program cannot be started.
ProcessResult run_process(const std::vector<std::string>& argv);

}  // namespace xgrad::viz::detail
