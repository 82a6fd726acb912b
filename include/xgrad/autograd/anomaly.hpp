// Anomaly detection (torch.autograd.detect_anomaly): backward checks every gradient for NaN and
// Inf and, when one appears, throws an error naming the op whose backward produced it and the
// line of the user's code that called that op.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "xgrad/autograd/node.hpp"

namespace xgrad::autograd {

/// RAII guard, per thread, as torch's `with torch.autograd.detect_anomaly():`. While it lives:
///  - every op records where it was called (a stack trace taken in Node's constructor: slow,
///    a debugging aid — ops recorded outside the guard cost nothing extra);
///  - every backward checks each gradient a node produces, and throws xgrad::Error
///    "log: backward produced Inf in the gradient for input 0 ... — 'log' was called at
///    my_model.cpp:42 (in train_step())" at the first NaN or Inf; an error thrown by a node's
///    backward gets the same "called at" suffix.
/// Wrap both the forward and the backward in it. Restores the previous mode when destroyed.
class detect_anomaly {
 public:
  explicit detect_anomaly(bool enabled = true);
  ~detect_anomaly();
  detect_anomaly(const detect_anomaly&) = delete;
  detect_anomaly& operator=(const detect_anomaly&) = delete;

 private:
  unsigned prev_;
};

/// True when anomaly detection is on for this thread.
bool is_anomaly_enabled();
/// Turns anomaly detection on or off for this thread (prefer the detect_anomaly guard).
void set_anomaly_enabled(bool enabled);

/// One frame of a recorded call stack: demangled function name, source file and line (empty
/// and 0 when the binary has no debug information for it).
struct SourceLocation {
  std::string function;
  std::string file;
  int line = 0;
};

/// Where the user's code called the op that recorded `node`: the first frame of the stack
/// recorded at forward time that is outside xgrad (not under this repository's include/xgrad
/// or src/, and not in namespace xgrad, boost or std) and has a file and line. Empty when the
/// node was recorded without detect_anomaly or no such frame exists.
std::optional<SourceLocation> call_site(const Node& node);

/// Every frame of the stack recorded for `node`, innermost first (inlined calls as frames of
/// their own). Empty when the node was recorded without detect_anomaly.
std::vector<SourceLocation> recorded_stack(const Node& node);

namespace detail {
/// The engine runs a node's backward through this under detect_anomaly: node.apply(grads),
/// then a NaN/Inf check of every gradient it returned; errors name the op's call site.
tensor_list apply_checked(Node& node, tensor_list&& grads);
}  // namespace detail

}  // namespace xgrad::autograd
