#pragma once
// Users of a server by `llmctl exec` (lease-like rows in exec_users, owned by the exec's process
// identity). An exec is a user from the moment its start decides, under the state lock, to spawn
// the server, to wait for another invocation's start of it, or to use it running, so a cancelled
// or killed exec never strands a server, and execs waiting for one start share that one server.
// The row of the exec that spawned a server carries `stops_server`: when that exec ends, the
// server is stopped unless another exec still uses it, in which case the duty passes to that one.
// A killed exec (even by SIGKILL) leaves a row whose owner is dead: reap deletes it and, if it
// carried the duty and no live exec uses the server, stops that server only.

#include "llmctl/store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace llmctl {

// What an `llmctl exec` asks of a start (StartOptions::exec_user), and what it got.
struct ExecUser {
    bool keep = false;    // --keep: a server this exec spawns is not stopped when it ends
    std::int64_t id = 0;  // this exec's row, once a decision registered it (0: none yet)
    std::string instance; // the server instance it uses
};

// Inside a start's decision transaction: makes the calling process a user of `instance` of
// `model`, inserting its row on the first call and moving it on later ones. `spawned`: this start
// spawns the server, so the exec carries the duty to stop it (unless keep); a duty it already
// carries for the same instance is kept.
void use_server(Store& store, const std::string& model, const std::string& instance, bool spawned, ExecUser& user);

// Inside a transaction, when a start adopts `instance` whose starter died: rows of dead execs of
// that instance go (event exec_reclaimed); a duty one carried passes to the oldest live exec of the
// instance, or is dropped, since a live invocation now owns the server.
void adopt_exec_users(Store& store, const std::string& instance);

// Deletes the row `id`. Returns true when the caller must now stop the server (it carried the
// duty and no other live exec uses that instance): the server is then already marked `stopping`
// with the caller as owner, in the same transaction. Passes the duty on otherwise.
bool leave_exec_user(const std::string& state_dir, std::int64_t id);

// A server whose exec died with the duty to stop it and no heir.
struct OrphanedDuty {
    std::string model, instance;
};

// For reap, inside its transaction: deletes rows whose owner is dead (event exec_reclaimed) and
// returns the servers that must now be stopped, marked `stopping` with the caller as owner.
std::vector<OrphanedDuty> reclaim_dead_exec_users(Store& store);

// Live exec users of `instance` (a server an exec uses is in use whatever its last_used says).
int live_exec_users(Store& store, const std::string& instance);

} // namespace llmctl
