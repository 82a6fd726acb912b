// Graphviz DOT export of a recorded graph (the text is written by xgrad; Graphviz is needed
// only to render it).
#pragma once

#include <string>
#include <vector>

#include "xgrad/tensor.hpp"

namespace xgrad::viz {

struct DotOptions {
  /// Graph title, shown as the graph's label.
  std::string title = "xgrad graph";
};

/// DOT text for the graph that produced `outputs`: one box per op node (op name, output shape
/// and dtype), one ellipse per leaf that requires grad (its name, e.g. "fc1.weight", and
/// shape), one double octagon per output; edges point the way data flows and carry the shape
/// that flows along them. Node ids follow recording order, so the same program gives the same
/// text. Throws xgrad::Error when an output is undefined.
std::string to_dot(const std::vector<Tensor>& outputs, const DotOptions& options = {});

/// Writes to_dot(outputs, options) to `path` atomically (temporary file, then rename).
void write_dot(const std::string& path, const std::vector<Tensor>& outputs,
               const DotOptions& options = {});

}  // namespace xgrad::viz
