#pragma once
// The server lifecycle (ARCHITECTURE.md): start (start.cpp), stop and the process set of a server
// (stop.cpp).

#include "llmctl/config.hpp"
#include "llmctl/process.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace llmctl {

struct ExecUser;

struct StartOptions {
    std::optional<int> port;                          // overrides the config
    std::optional<Millis> timeout;                    // overrides startup_timeout (0: no limit)
    bool wait = true;                                 // false: return once spawned (the row then has no owner)
    std::function<void(const std::string&)> progress; // notes for stderr (may be empty)
    std::function<void(const std::string&)> detail;   // notes worth showing only with -v
    // Called every round while waiting for health (or for another invocation's start), with
    // the server's log path and the time waited so far; drives the TTY status line.
    std::function<void(const std::string& log_path, Millis elapsed)> waiting;
    // Polled while waiting (for health, or for another start); true ends the start with
    // Error(interrupted), leaving the server as it is (the caller decides: exec stops one it
    // spawned). Empty: never.
    std::function<bool()> cancelled;
    // For `llmctl exec`: register the calling process as a user of the server in the same
    // transaction as each decision (see exec_users.hpp); filled in as it goes, so it is valid
    // even when start_server throws.
    ExecUser* exec_user = nullptr;
    // The whole config, for a model in a memory pool: the pools, and the other models' pin and
    // stop_timeout when they are evicted. Without it a start is not admitted by memory.
    const Config* config = nullptr;
    // The longest wait for memory in the pool (0: no limit); default: `timeout`, else
    // startup_timeout, counted before the health wait. chat and serve give queue_timeout.
    std::optional<Millis> admission_timeout;
    // A policy restart (server_exit): each decision needs our `restarting` row (or our admitting
    // one) still there: a stop or a user's start that took it calls the restart off
    // (Error(interrupted)). `restarts`: what the new row counts.
    bool policy_restart = false;
    std::int64_t restarts = 0;
    // A keep-warm start (preload, by reap, serve or apply): called off (Error(interrupted)) when
    // `stop` holds the model down, or when it does not fit its pool without evicting or waiting.
    // Any other start that spawns lets a hold go.
    bool keep_warm = false;
};

struct StartResult {
    std::string url;
    bool already_running = false;
    bool adopted = false; // it finished the start of an llmctl that died
    pid_t pid = 0;
    int port = 0;
};

// Ensures `model` runs in `state_dir`; never spawns a duplicate. Throws Error(server/timeout…).
// A start of a running server takes no state lock (its last_used is refreshed with one SQLite
// write at most once a second). `--port` naming another port than the running server's is
// Error(usage).
StartResult start_server(const std::string& state_dir, const ModelConfig& model, const StartOptions& opts);

// What stop_server did.
struct StopResult {
    bool stopped = false;   // there was a server of that name and it is gone now
    pid_t pid = 0;          // its pid
    std::string unrecorded; // why the state file could not record the stop ("" when it did)
    bool held = false;      // it is held down now (stop_server's `hold`)
};

// Checked under the lock before a stop does anything; false calls it off.
using StillWanted = std::function<bool(Store& store, const ServerRow& row)>;

// Stops the server called `name` and every process of it. First the row is marked `stopping` (no
// new chat slot is granted on it) and, for up to `drain`, stop waits for the chats in flight
// (active leases with a live owner) to finish; then SIGTERM, SIGKILL after `stop_timeout`; the
// row goes. Signals go to the proven identities only. When the state file cannot be written (a
// full disk), the stop goes ahead from what it read and says so in `unrecorded`. `still` can
// call it off (reap's idle stop must not stop a server that was used meanwhile). The final event
// is `event` (detail appended). With `hold`, a model that would come back by itself
// (stop_holds) is held down in the transaction that marks it, running or not, so no start
// (lock-free when it sees a running server) finds a hold on a server that was never stopped.
StopResult stop_server(const std::string& state_dir, const std::string& name, Millis stop_timeout, Millis drain,
                       const std::function<void(const std::string&)>& progress = {}, const std::string& event = "stopped",
                       const std::string& detail = "", const StillWanted& still = {}, const ModelConfig* hold = nullptr);

// Deletes the row of a stopped server (`row`'s instance) with the final event; returns "" or, on a
// full disk, why it could not (a later start, stop or reap clears the row of the dead server).
std::string record_stopped(const std::string& state_dir, const ServerRow& row, const std::string& event, const std::string& detail);

// Active leases (chats in flight) on `model` whose owner is alive.
int chats_in_flight(const std::string& state_dir, const std::string& model);

// Refreshes a running server's last_used, writing only when the stored value is stale (older
// than a tenth of the idle timeout, and at least a second), so the hot path stays cheap. One
// SQLite write, without the state lock; a failure (a full disk) is ignored.
void touch_last_used(const std::string& state_dir, const ServerRow& row, Millis idle_timeout);
// Its two halves, for a caller that writes through its own transaction (serve's event loop, through
// the lease broker): whether this process should write `row`'s last_used `now` (claimed once per
// server and stale period), and the write.
bool claim_last_used_write(const ServerRow& row, Millis idle_timeout, std::int64_t now);
void write_last_used(Store& store, const ServerRow& row, std::int64_t now);

// Starts the idle clock of a request's server however the request ends (answered, failed, cut,
// cancelled): touch_last_used when it goes out of scope, if the request had a server row.
struct IdleClockAtEnd {
    const std::string& state_dir;
    const std::optional<ServerRow>& row;
    Millis idle_timeout;
    ~IdleClockAtEnd() {
        if (row) touch_last_used(state_dir, *row, idle_timeout);
    }
};

// SIGTERM to every process of a server, SIGKILL to what is left after `stop_timeout` (children
// forked meanwhile included), without touching its row.
void terminate_server(const Identity& server, const std::string& instance, Millis stop_timeout,
                      const std::function<void(const std::string&)>& progress = {}, const std::string& name = "");

// Every live process of a server: its session/group, and processes carrying its instance marker.
std::vector<Identity> server_processes(const Identity& server, const std::string& instance);

// Kills the processes of `name` that carry this state dir's markers but have no row (their row
// deleted by hand or lost to damage), after a spawn; see start.cpp.
void kill_orphans_of(const std::string& state_dir, const std::string& name, const std::string& ours);

} // namespace llmctl
