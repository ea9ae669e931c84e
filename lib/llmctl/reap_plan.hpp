#pragma once
// What reap decides (ARCHITECTURE.md, "reap"): a pure function of what it read, so that every
// rule can be tested without processes. reap.cpp takes the snapshot under the lock, records
// the plan in the same transaction and carries out the rest outside it.

#include "llmctl/recovery.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/units.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace llmctl {

// A row with what reap found out about it.
struct ReapRow {
    ServerRow row;
    bool server_alive = false;  // the server's proven identity is alive
    bool owner_alive = false;   // the invocation that owns a starting/stopping row is alive
    bool monitor_alive = false; // the server's monitor lives: it records the exit and decides (restart)
    bool in_use = false;        // a chat holds or waits for a slot, or an exec uses it
    Millis idle_limit{0};       // 0: never idle
};

// A chat lease and whether its client lives.
struct ReapLease {
    std::int64_t id = 0;
    std::string model;
    pid_t owner_pid = 0;
    bool owner_alive = false;
};

struct ReapSnapshot {
    std::int64_t now = 0; // ms since the epoch
    std::vector<ReapRow> rows;
    std::vector<ReapLease> leases;
    std::vector<MarkedProcess> marked; // live processes carrying this state dir's markers
    std::vector<ServerRow> duty_stops; // servers whose exec died with the duty to stop them, no heir
};

// A live row whose proven server carries other markers: the markers are the truth.
struct RowRepair {
    ServerRow row;
    MarkedProcess marks;
};

struct ReapPlan {
    // Recorded under the lock, in the snapshot's transaction:
    std::vector<ServerRow> dead;        // rows whose server is gone: deleted
    std::vector<ReapLease> dead_leases; // leases whose client died: deleted
    std::vector<RowRepair> repairs;     // rows set to their server's markers
    // Carried out outside the lock, each re-checked under it by the stop it runs:
    std::vector<MarkedProcess> orphans; // marked processes no live row accounts for: killed
    std::vector<ServerRow> adopt;       // starting, owner dead, server alive: adopt or stop
    std::vector<ServerRow> finish_stop; // stopping, owner dead: the stop is finished
    std::vector<ServerRow> duty_stops;  // as in the snapshot
    std::vector<ServerRow> idle;        // running, unused past the idle limit, in use by nobody
};

ReapPlan decide(const ReapSnapshot& s);

} // namespace llmctl
