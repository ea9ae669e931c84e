#pragma once
// Starting a server: Boost.Process v2, a new session (setsid), stdin from /dev/null, stdout
// and stderr appended to a log file we open ourselves (O_APPEND), never a pipe; no inherited
// fds; detached, because a v2 process object kills its child when destroyed.

#include "llmctl/units.hpp"
#include "llmctl/fd.hpp"
#include "llmctl/process.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace llmctl {

// The monitor a server runs under (llmctl-monitor: its parent, which records its exit).
struct MonitorSpec {
    std::string program;   // llmctl-monitor (bundled_monitor())
    std::string llmctl;    // the llmctl it becomes once the server exits (this binary)
    std::string state_dir; // canonical
    std::string name, instance;
    std::string origin; // the config file the server was started from ("" built-in or ad-hoc)
    // What the monitor's prober (`llmctl probe`, its child for the server's life) is given: a
    // JSON object (see prober.hpp); "" for a model without a probe.
    std::string probe;
};

struct SpawnRequest {
    std::vector<std::string> argv;          // argv[0] is looked up in PATH if it has no '/'
    std::map<std::string, std::string> env; // added to (and overriding) our environment
    std::string cwd;                        // empty = ours
    std::string log_path;                   // opened O_WRONLY|O_APPEND|O_CREAT|O_NOFOLLOW, 0600
    std::optional<MonitorSpec> monitor;     // without one the server is our child (tests)
};

// A server forked but held at a gate: the child has its pid, session and log, and blocks before
// exec until open() is called. If this object is destroyed (or the whole llmctl dies, even by
// SIGKILL) before open(), the child reads end-of-file and exits 127 without ever running the
// command, so a start that dies between spawn and the commit of its row leaves no orphan server.
struct GatedSpawn {
    Identity id;
    Identity monitor; // its monitor (pid 0 without one)
    Fd gate;          // write end of the gate pipe
    void open();
};

// Forks the process behind a gate (see GatedSpawn) and returns its identity. With a monitor,
// the tree is llmctl -> a child that exits at once -> the monitor (a session of its own) -> the
// server (a session of its own): the monitor is nobody's child but init's (or a subreaper's), so
// no llmctl invocation keeps it as a zombie, and it waits at the gate too, becoming
// llmctl-monitor only once the gate opens; a gate that closes unopened ends both silently. Throws
// Error(server) when the program cannot be found or is not executable, Error(failure) when the
// log cannot be opened. An exec that still fails is written to the log and the child exits 127.
GatedSpawn spawn_gated(const SpawnRequest& req);

// spawn_gated with the gate opened at once.
Identity spawn_server(const SpawnRequest& req);

// Runs a tool (argv[0] looked up in PATH) with stdin from /dev/null and stderr discarded, and
// returns what it printed on stdout: nullopt when it is not found, cannot start, exits non-zero,
// prints more than `max_bytes` or is still running after `timeout` (then it is killed). For the
// tools llmctl asks (nvidia-smi), never for a server.
std::optional<std::string> run_and_read(const std::vector<std::string>& argv, Millis timeout, std::size_t max_bytes = 1 << 20);

// Whether a program of that name is found in PATH.
bool on_path(const std::string& program);

// This process's environment with `extra` set over it, as NAME=VALUE strings (what a server
// and exec's CMD are started with).
std::vector<std::string> environment_with(const std::map<std::string, std::string>& extra);

// Opens a log file for appending (0600, O_NOFOLLOW, O_CLOEXEC); throws on failure.
int open_log_for_append(const std::string& path);

} // namespace llmctl
