#include "llmctl/in_use.hpp"

#include "llmctl/exec_users.hpp"
#include "llmctl/process.hpp"

namespace llmctl {

ServerUse server_use(Store& store, const ServerRow& row) {
    ServerUse use;
    auto q = store.prepare("SELECT state, owner_pid, owner_start_ticks, owner_boot_id FROM leases WHERE model=?");
    q.bind(1, row.name);
    while (q.step())
        if (is_alive(identity_at(q, 1))) ++(q.str(0) == "active" ? use.active : use.waiting);
    use.execs = live_exec_users(store, row.instance);
    return use;
}

} // namespace llmctl
