// Writing files so that a crash never leaves a half-written one behind.
#pragma once

#include <string>
#include <string_view>

namespace xgrad::io {

/// Writes `content` to `path` atomically: into a temporary file in the same folder, flushed
/// and fsync'd, then renamed over `path`. Throws xgrad::Error naming the path when the folder
/// does not exist or a write fails; the old file (if any) is then untouched.
void write_file_atomically(const std::string& path, std::string_view content);

}  // namespace xgrad::io
