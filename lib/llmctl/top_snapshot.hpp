#pragma once
// What `llmctl top` shows, read at each refresh from one snapshot of the state file without the
// lock (nothing is written): the servers with their slots, memory, tokens/s and last exit, the
// memory pools, the gateways and the latest events.

#include "llmctl/admission.hpp"
#include "llmctl/config.hpp"
#include "llmctl/events_feed.hpp"
#include "llmctl/gateway_registry.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace llmctl {

struct TopServer {
    std::string name, status; // the status a reader reports (effective_status)
    pid_t pid = 0;
    std::optional<std::int64_t> port;
    std::optional<std::int64_t> up_since; // ready (else started) at; none while no process runs
    std::uint64_t rss = 0;                // bytes, of the server process (0: none)
    std::optional<std::int64_t> memory;   // what it counts against its pool
    std::string memory_source, pool;
    int active = 0, queued = 0, cap = 0; // slots (cap 0: unknown)
    double tokens_per_s = 0;             // tokens out of the requests that ended in the last minute, per second
    std::string last_exit;               // its last exit's cause ("" none)
    std::int64_t restarts = 0;
};

struct TopSnapshot {
    std::int64_t at = 0;     // when it was read (ms since the epoch)
    bool state_file = false; // false: nothing was started yet
    std::vector<TopServer> servers;
    std::vector<PoolReport> pools;
    std::vector<GatewayRow> gateways;
    std::vector<EventRow> events; // the latest, oldest first
};

// `config` (nullable) gives the slot caps and the pools' budgets.
TopSnapshot read_top(const std::string& state_dir, const Config* config, int events = 8);

} // namespace llmctl
