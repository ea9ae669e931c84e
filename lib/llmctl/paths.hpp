#pragma once
// Where things live: the state dir, its files, and the bundled mock server.

#include <string>
#include <vector>

namespace llmctl {

// The state dir in force: `cli` > $LLMCTL_HOME > ${XDG_STATE_HOME:-~/.local/state}/llmctl, as
// its canonical path (see canonical_path). Markers and rows carry this spelling only, so two
// spellings of one dir (relative, through a symlink, with a trailing slash) are one state dir,
// and one spelling in two working directories is two.
std::string resolve_state_dir(const std::string& cli);

// One absolute spelling of a path: relative to the working directory, symlinks resolved, no "."
// or ".." components, no doubled or trailing slash. The part that does not exist yet is appended
// to the resolved existing part. Throws Error(failure) for a dangling symlink or an unreadable
// component.
std::string canonical_path(const std::string& path);

// Creates the state dir (0700, parents as needed) and its logs/ subdir, and refuses one that
// is owned by another user or writable by group/others. Throws Error(failure) with a hint.
void ensure_state_dir(const std::string& dir);

// Checks an existing state dir as ensure_state_dir does, without creating anything.
// Returns false when it does not exist.
bool check_state_dir(const std::string& dir);

// The directory of the running executable (from /proc/self/exe).
std::string self_exe_dir();

// Absolute path of llmctl-mock-server: beside the running binary (build tree), or
// <prefix>/libexec/llmctl/ when installed. Never looked up through PATH.
std::string bundled_mock_server();

// Absolute path of llmctl-monitor (found as the mock server is).
std::string bundled_monitor();

// llmctl-tls, which makes llmctl's https:// connections (tls_tunnel.hpp).
std::string bundled_tls_helper();

// llmctl-top, the full-screen view of `llmctl top` (it maps ncurses; llmctl does not).
std::string bundled_top_view();

// Absolute path of the running binary (/proc/self/exe).
std::string self_exe();

// state.db, state.lock and logs/NAME.log inside a state dir.
std::string state_db_path(const std::string& dir);
std::string state_lock_path(const std::string& dir);
std::string log_path(const std::string& dir, const std::string& name);

// The access log of every `llmctl serve` on a state dir: logs/@serve.log, a name no model can
// have (llmctl logs @serve reads it; reap rotates it like a server's log).
inline constexpr const char* k_gateway_log_name = "@serve";

// The names that have a log (logs/NAME.log) in a state dir, sorted.
std::vector<std::string> logged_names(const std::string& dir);

} // namespace llmctl
