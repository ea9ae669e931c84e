#pragma once
// JSON text that never throws on what it carries: rows of a damaged state file, the argv of an
// ad-hoc command and a process's cmdline can hold bytes that are not UTF-8 (JSON must be);
// they come out as U+FFFD instead of ending the command with a library exception.

#include <nlohmann/json.hpp>
#include <string>

namespace llmctl {

inline std::string json_text(const nlohmann::json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace llmctl
