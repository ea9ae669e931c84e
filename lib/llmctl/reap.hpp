#pragma once
// reap (ARCHITECTURE.md): clears dead rows, finishes what dead invocations left half done, kills
// orphans (by marker, identity-checked), stops idle servers, reclaims leases of dead owners and
// rotates logs. Safe next to any other command: the flock is held only for decisions and
// writes, never while a process is given time to die. It works from what it can read: on a full
// disk the servers are still signalled (the rows follow when a write succeeds), and with a broken
// config only the decisions that need the config (idle timeouts, log rotation) are skipped.

#include "llmctl/config.hpp"
#include "llmctl/units.hpp"

#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace llmctl {

struct ReapOptions {
    bool dry_run = false;
    std::optional<Millis> idle_timeout; // overrides every model's idle_timeout
    // false: the config could not be read, `cfg` holds the built-in defaults only: idle stops
    // (unless idle_timeout is given) and log rotation are skipped, and a warning says so.
    bool config_ok = true;
    // Polled while a preload start waits for its server (serve's shutdown); empty: never.
    std::function<bool()> cancelled;
};

// One thing reap did (or, with --dry-run, would do).
struct ReapAction {
    // reaped | adopted | orphan_killed | lease_reclaimed | exec_reclaimed | gateway_cleared | repaired | rotated | rebuilt
    std::string kind;
    std::string name; // server or model name ("" when unknown)
    pid_t pid = 0;
    std::string detail; // human-readable reason
};

struct ReapReport {
    std::vector<ReapAction> actions;
    std::vector<std::string> warnings; // what could not be done or recorded, and why
};

ReapReport reap(const std::string& state_dir, const Config& cfg, const ReapOptions& opts);

} // namespace llmctl
