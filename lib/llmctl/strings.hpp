#pragma once
// Small string helpers shared by config, CLI and tables.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmctl {

// Levenshtein distance, for "did you mean …?".
std::size_t edit_distance(std::string_view a, std::string_view b);

// The closest candidate within a distance that still looks like a typo, if any.
std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates);

// " (did you mean \"x\"?)" or "" when nothing is close.
std::string did_you_mean_suffix(std::string_view word, const std::vector<std::string>& candidates);

// Replaces every occurrence of `from` in `s` by `to`.
std::string replace_all(std::string s, std::string_view from, std::string_view to);

// Reads a whole (small) file; nullopt when it cannot be opened.
std::optional<std::string> read_file(const std::string& path);

// The last `max_bytes` bytes of a file (all of it when smaller), read from the end, so a
// 1 GiB log costs the same as a small one; nullopt when it cannot be opened.
std::optional<std::string> read_tail(const std::string& path, std::size_t max_bytes);

// The last `n` lines of `text` (a final line without newline counts).
std::string last_lines(const std::string& text, std::size_t n);

} // namespace llmctl
