#pragma once
// Small string helpers shared by config, CLI and tables.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmctl {

// Optimal string alignment distance (Levenshtein plus a swap of neighbours counting 1), for
// "did you mean …?".
std::size_t edit_distance(std::string_view a, std::string_view b);

// The closest candidate within a distance that still looks like a typo, if any.
std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates);

// " (did you mean \"x\"?)" or "" when nothing is close.
std::string did_you_mean_suffix(std::string_view word, const std::vector<std::string>& candidates);

// Replaces every occurrence of `from` in `s` by `to`.
std::string replace_all(std::string s, std::string_view from, std::string_view to);

// The last `n` lines of `text` (a final line without newline counts).
std::string last_lines(const std::string& text, std::size_t n);

} // namespace llmctl
