// Rendering DOT text to SVG, PNG or PDF with Graphviz's `dot` program, when it is installed.
// The library never links Graphviz: it runs the program.
#pragma once

#include <string>

namespace xgrad::viz {

/// The full path of Graphviz's `dot` on PATH, or "" when it is not installed.
std::string graphviz_dot();
/// True when Graphviz's `dot` is on PATH.
bool graphviz_available();

/// Renders `dot_text` to `path` with `dot`. The format comes from `format` ("svg", "png",
/// "pdf") or, when empty, from the file's extension (.svg, .png, .pdf). The file is written
/// atomically: `dot` writes a temporary file next to it, renamed over `path` on success.
/// Throws xgrad::Error when `dot` is not on PATH (saying how to install it: apt-get install
/// graphviz), for an unknown format, or when `dot` fails (with its error message).
void render(const std::string& dot_text, const std::string& path, const std::string& format = "");

}  // namespace xgrad::viz
