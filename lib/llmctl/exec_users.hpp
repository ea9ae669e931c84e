#pragma once
// Users of a server by `llmctl exec` (lease-like rows in exec_users, owned by the exec's process
// identity). The row of the exec that started a server carries `stops_server`: when that exec
// ends, the server is stopped unless another exec still uses it, in which case the duty passes
// to that one. A killed exec (even by SIGKILL) leaves a row whose owner is dead: reap deletes
// it and, if it carried the duty and no live exec uses the server, stops that server only.

#include "llmctl/store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace llmctl {

struct ExecUse {
    std::int64_t id = 0;
    std::string instance; // the server instance in use
};

// Registers the calling process as a user of `model`'s running server whose pid is
// `server_pid`; nullopt when that server is no longer running (the caller starts it again).
std::optional<ExecUse> add_exec_user(const std::string& state_dir, const std::string& model, int server_pid, bool stops_server);

// Deletes the row `id`. Returns true when the caller must now stop the server (it carried the
// duty and no other live exec uses that instance); passes the duty on otherwise.
bool leave_exec_user(const std::string& state_dir, std::int64_t id);

// For reap, inside its transaction: deletes rows whose owner is dead (event exec_reclaimed) and
// returns the (model, instance) pairs whose server must now be stopped.
std::vector<std::pair<std::string, std::string>> reclaim_dead_exec_users(Store& store);

} // namespace llmctl
