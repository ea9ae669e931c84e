#pragma once
// The server lifecycle (DESIGN §5): start, stop, and the process set of a server.

#include "llmctl/config.hpp"
#include "llmctl/process.hpp"
#include "llmctl/servers.hpp"

#include <functional>
#include <string>
#include <vector>

namespace llmctl {

struct StartOptions {
    std::optional<int> port;          // overrides the config
    std::optional<Millis> timeout;    // overrides startup_timeout
    bool wait = true;                 // false: return once spawned
    std::function<void(const std::string&)> progress; // notes for stderr (may be empty)
    std::function<void(const std::string&)> detail;   // notes worth showing only with -v
    // Called every round while waiting for health (or for another invocation's start), with
    // the server's log path and the time waited so far; drives the TTY status line.
    std::function<void(const std::string& log_path, Millis elapsed)> waiting;
};

struct StartResult {
    std::string url;
    bool already_running = false;
    bool adopted = false;
    pid_t pid = 0;
    int port = 0;
};

// Ensures `model` runs in `state_dir`; never spawns a duplicate. Throws Error(server/timeout…).
StartResult start_server(const std::string& state_dir, const ModelConfig& model, const StartOptions& opts);

// Stops the server called `name` and every process of it; returns false when none was running.
// First the row is marked `stopping` (no new chat slot is granted on it) and, for up to `drain`,
// stop waits for the chats in flight (active leases with a live owner) to finish; then SIGTERM,
// SIGKILL after `stop_timeout`. `still`, checked under the lock before anything is done, can call
// it off (reap's idle stop must not stop a server that was used meanwhile). The final event is
// `event` (detail appended).
bool stop_server(const std::string& state_dir, const std::string& name, Millis stop_timeout, Millis drain,
                 const std::function<void(const std::string&)>& progress = {}, const std::string& event = "stopped",
                 const std::string& detail = "", const std::function<bool(const ServerRow&)>& still = {});

// Active leases (chats in flight) on `model` whose owner is alive.
int chats_in_flight(const std::string& state_dir, const std::string& model);

// Refreshes a running server's last_used, writing only when the stored value is stale (older
// than a tenth of the idle timeout, and at least a second), so the hot path stays read-only.
void touch_last_used(const std::string& state_dir, const ServerRow& row, Millis idle_timeout);

// Every live process of a server: its session/group, and processes carrying its instance marker.
std::vector<Identity> server_processes(const Identity& server, const std::string& instance);

// Live processes of this user carrying the markers of `state_dir` and server `name`.
std::vector<Identity> marked_processes(const std::string& state_dir, const std::string& name);

} // namespace llmctl
