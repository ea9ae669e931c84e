#pragma once
// Whether a server is in use now by anyone llmctl knows of: chats holding or waiting for a slot of
// its model (leases with a live owner) and `llmctl exec`s using it. A server in use is never idle,
// whatever its last_used says (a chat may stream for longer than idle_timeout; CMD of an exec
// talks to the server directly).

#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"

namespace llmctl {

struct ServerUse {
    int active = 0;  // chats with a slot
    int waiting = 0; // chats queued for one
    int execs = 0;   // llmctl exec users of this instance
    bool any() const { return active + waiting + execs > 0; }
};

// Counts the live users of `row`'s server (inside the caller's transaction or snapshot).
ServerUse server_use(Store& store, const ServerRow& row);

} // namespace llmctl
