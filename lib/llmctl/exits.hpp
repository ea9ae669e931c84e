#pragma once
// The exit history (issue 20): every server's exit with its cause, as its monitor saw it (the
// wait status) or, when no monitor saw it (one killed, a row of an earlier llmctl), as "cause
// unknown" once llmctl finds the server gone. Kept after the rows go, bounded.

#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace llmctl {

struct ExitRecord {
    std::string name, instance;
    pid_t pid = 0;
    std::int64_t at = 0;             // ms since the epoch
    std::optional<int> code, signal; // one of the two when known
    bool core = false;               // the signal dumped core
    bool oom = false;                // likely OOM-killed (see describe_exit)
    bool known = false;              // false: no monitor saw it
    std::string cause;               // "exited with code 1", "killed by SIGSEGV (core dumped)", …
    std::string action;              // "restarted", "failed", "" none
};

// The rows kept: the newest k_exits_kept over all servers.
constexpr int k_exits_kept = 1000;

// "SIGSEGV" (or "signal 77" for one without a name).
std::string signal_name(int sig);

// What a wait status says, in words: "exited with code 0", "killed by SIGSEGV (core dumped)",
// "killed by SIGKILL (likely OOM-killed)". The OOM rule: a SIGKILL while the kernel's count of
// OOM kills (/proc/vmstat oom_kill) rose during the server's life, and no stop of llmctl was
// killing it.
ExitRecord exit_from_wait_status(int wait_status, long long oom_kills_during, bool stopping);

// Adds an exit; a known cause replaces an unknown one of the same server (its monitor reported
// after llmctl found it gone). Trims the history to k_exits_kept.
void record_exit(Store& store, const ExitRecord& e);

// For a row whose server is gone and whose exit no monitor recorded: an exit of unknown cause
// (a no-op when one is recorded, or the row has no server: admitting).
void record_unknown_exit(Store& store, const ServerRow& row);

// Sets the action of a server's exit (inserting an unknown one when none is recorded yet).
void set_exit_action(Store& store, const ServerRow& row, const std::string& action);

// The exits of `name` since `since_ms` whose action was a restart.
int restarts_since(Store& store, const std::string& name, std::int64_t since_ms);

// After a crash loop gave up: its restarts no longer count against the next start's.
void forget_restarts(Store& store, const std::string& name);

// The recorded exit of one server (by its row's instance).
std::optional<ExitRecord> exit_of(Store& store, const std::string& instance);

// The last exit of each name.
std::map<std::string, ExitRecord> last_exits(Store& store);

// The exits of one name (all names when empty), oldest first, at most `limit`.
std::vector<ExitRecord> exit_history(Store& store, const std::string& name, int limit);

} // namespace llmctl
