#pragma once
// The lines of `llmctl top` from a snapshot (lib/llmctl/top_snapshot.hpp): the same text on a
// full screen (ncurses) and in the plain refresh of a dumb terminal or a pipe.

#include "llmctl/top_snapshot.hpp"

#include <string>
#include <vector>

namespace llmctl_top {

enum class SortKey { name, status, tokens, memory };
const char* sort_name(SortKey k);
SortKey next_sort(SortKey k);

struct Line {
    enum class Kind { title, section, header, server, text, blank };
    Kind kind = Kind::text;
    std::string text;
    std::string status; // a server line's status (its colour)
    int server = -1;    // a server line's index in the sorted servers
};

// The servers in the order `key` gives (ties by name).
std::vector<llmctl::TopServer> sorted_servers(std::vector<llmctl::TopServer> servers, SortKey key);

// Every line of the view; `servers` as sorted_servers returned them.
std::vector<Line> view_lines(const llmctl::TopSnapshot& snap, const std::vector<llmctl::TopServer>& servers, SortKey key,
                             const std::string& state_dir);

} // namespace llmctl_top
