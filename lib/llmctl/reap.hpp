#pragma once
// reap (DESIGN §5): clears dead rows, finishes what dead invocations left half done, kills
// orphans (by marker, identity-checked), stops idle servers, reclaims leases of dead owners and
// rotates logs. Safe next to any other command: the flock is held only for decisions and
// writes, never while a process is given time to die.

#include "llmctl/config.hpp"
#include "llmctl/units.hpp"

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace llmctl {

struct ReapOptions {
    bool dry_run = false;
    std::optional<Millis> idle_timeout; // overrides every model's idle_timeout
};

// One thing reap did (or, with --dry-run, would do).
struct ReapAction {
    std::string kind;   // reaped | adopted | orphan_killed | lease_reclaimed | exec_reclaimed | rotated | rebuilt
    std::string name;   // server or model name ("" when unknown)
    pid_t pid = 0;
    std::string detail; // human-readable reason
};

std::vector<ReapAction> reap(const std::string& state_dir, const Config& cfg, const ReapOptions& opts);

} // namespace llmctl
