#pragma once
// What happens when a server exits (issue 20): its monitor, llmctl-monitor, waits for it and then
// runs `llmctl monitor-exit`, which calls handle_server_exit: the exit is recorded with its cause
// under the state lock, and the model's restart policy decides what comes next (nothing, a
// restart after a delay, or `failed` when it crash-loops).

#include "llmctl/config.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <sys/types.h>

namespace llmctl {

// What the monitor saw.
struct ServerExit {
    std::string state_dir, name, instance;
    std::string origin; // the config file the server came from ("<built-in>", a path)
    pid_t pid = 0;
    int wait_status = 0;
    long long oom_kills = -1; // OOM kills the kernel counted during the server's life (-1 unknown)
    std::int64_t at = 0;      // when it exited, ms since the epoch
};

// Whether a policy restarts after an exit with this code (nullopt: killed by a signal).
bool policy_restarts(const std::string& policy, std::optional<int> code);

// The delay before restart number n+1 (n restarts so far): restart_delay doubled n times, at
// most 5 minutes, with up to a tenth more or less at random (restarts of many servers spread).
Millis restart_delay_for(Millis first, int n, double jitter_unit);

// Records the exit and applies the policy: returns once the restart (if any) is running, failed
// for good or was called off. Notes (what was decided) go to `note` (the server's log).
void handle_server_exit(const ServerExit& x, const std::function<void(const std::string&)>& note);

} // namespace llmctl
