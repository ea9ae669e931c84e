#pragma once
// Recovery from a lost or corrupt state file: every server llmctl spawns carries markers in its
// environment (LLMCTL_HOME, LLMCTL_INSTANCE, LLMCTL_NAME, LLMCTL_PORT, LLMCTL_HOST), so the
// rows can be rebuilt from the live processes and a lost file never causes a duplicate server.

#include "llmctl/process.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"

#include <map>
#include <string>
#include <vector>

namespace llmctl {

// A live process of this user carrying the markers of a state dir.
struct MarkedProcess {
    Identity id;
    pid_t session = 0;
    std::string instance, name, host;
    int port = 0;
};

// Every live process carrying `state_dir`'s LLMCTL_HOME and an LLMCTL_INSTANCE marker. With
// `leaders_only`, only session leaders (servers and escaped children: both setsid) are read,
// which skips most environ reads.
std::vector<MarkedProcess> scan_marked(const std::string& state_dir, bool leaders_only = false);

// The markers of one live process of this user (its LLMCTL_* environment); nullopt when it is
// gone, not ours, or carries no instance marker.
std::optional<MarkedProcess> markers_of(const Identity& id);

// True when the row's server carries the markers the row claims: the row's instance, host and
// port. A row that fails it is damaged: connecting to its host and port could
// reach a stranger (a flipped byte turns 127.0.0.1 into a public address). One environ read.
bool row_matches_markers(const std::string& state_dir, const ServerRow& row);

// Throws Error(failure) naming the damage when !row_matches_markers: never talk to an address a
// damaged row names. A server that has exited meanwhile is Error(server) instead.
void require_row_matches_markers(const std::string& state_dir, const ServerRow& row);

// The server of each instance among `marked`: its oldest process.
std::vector<MarkedProcess> marked_servers(const std::vector<MarkedProcess>& marked);

// A marked server a rebuild may give a row, with what its health probe answered.
struct RebuildCandidate {
    MarkedProcess server;
    bool healthy = false; // GET /health answered 200 within 500 ms
};
// By name, oldest first.
using RebuildCandidates = std::map<std::string, std::vector<RebuildCandidate>>;

// The live marked servers of `state_dir`, each probed for health. Slow (up to 500 ms a server
// that does not answer): called before taking the state lock, never under it.
RebuildCandidates probe_marked_servers(const std::string& state_dir);

// Inserts rows for those `candidates` the store does not know and that still run, inside the
// caller's exclusive transaction (event `rebuilt`). Two live servers claiming one name: the oldest
// healthy one is kept, the others get SIGTERM (event `duplicate_stopped`). Returns the names
// rebuilt.
std::vector<std::string> rebuild_rows(Store& store, const std::string& state_dir, const RebuildCandidates& candidates);

// Before a mutating command decides anything: if the state file is missing or empty while marked
// servers of this state dir are alive, rebuild it under the lock. Cheap when the file is there.
std::vector<std::string> recover_lost_state(const std::string& state_dir);

// `reap --rebuild`: moves an unreadable state file aside (with its -wal/-shm; never deleted),
// then rebuilds a fresh one from the markers. Returns the path the old file was moved to, or ""
// when the file was readable and left alone.
std::string rebuild_state(const std::string& state_dir, std::vector<std::string>* rebuilt = nullptr);

} // namespace llmctl
