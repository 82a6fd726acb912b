// Writing files so that a crash never leaves a half-written one behind.
#pragma once

#include <string>
#include <string_view>

namespace xgrad::io {

/// Writes `content` to `path` atomically: into a temporary file in the same folder, flushed
/// and fsync'd, then renamed over `path`, so a reader sees the old file or the new one, never
/// a half-written one. A symbolic link is followed (its target is replaced, the link stays).
///
/// When `path` exists and is not a regular file (a device such as /dev/stdout or /dev/null,
/// a FIFO, a socket) the bytes are written straight into it: renaming over a device would
/// replace the device with a regular file.
///
/// The temporary file is "<path>.tmp.XXXXXX" (mkstemp's six letters or digits). A process
/// killed during a write (kill -9, power loss) leaves it behind, so each write first removes
/// the stale temporary files of the same `path`: only regular files in that folder named
/// exactly "<file name of path>.tmp." + six letters or digits, and only those no live writer
/// holds: a writer keeps an flock on its temporary file until the rename, and the kernel drops
/// a killed writer's lock. Files of other paths, or of any other name pattern, are never
/// touched. Concurrent writes to one path by several processes are safe (the last rename wins)
/// except in a tiny window between mkstemp and the lock, where one write may fail with an
/// error (never leave a broken file).
///
/// Throws xgrad::Error naming the path when the folder does not exist, `path` is a folder,
/// or a write fails; a regular file already at `path` is then untouched and no temporary
/// file is left behind.
void write_file_atomically(const std::string& path, std::string_view content);

}  // namespace xgrad::io
