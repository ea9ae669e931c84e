#pragma once
// Reading files and directories: the small files of /proc and the state dir, a log's tail; and
// writing a file whole, atomically.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace llmctl {

// Reads a whole (small) file; nullopt when it cannot be opened.
std::optional<std::string> read_file(const std::string& path);

// The last `max_bytes` bytes of a file (all of it when smaller), read from the end, so a
// 1 GiB log costs the same as a small one; nullopt when it cannot be opened.
std::optional<std::string> read_tail(const std::string& path, std::size_t max_bytes);

// The names in a directory, "." and ".." left out, in no particular order; empty when it cannot
// be read.
std::vector<std::string> list_dir(const std::string& dir);

// Replaces `path` with `text` by a rename from a file beside it, so that a reader sees the old
// file or the new one, never a part (node_exporter's textfile collector asks for this). Throws
// Error(failure) naming the path when it cannot (the file beside it is removed).
void write_file_atomically(const std::string& path, const std::string& text);

} // namespace llmctl
