#pragma once
// Rows of the `servers` table and what a reader can say about them without the lock.

#include "llmctl/address.hpp"
#include "llmctl/process.hpp"
#include "llmctl/store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace llmctl {

struct ServerRow {
    std::string name, instance, status, host, log_path, argv_json, config_hash, error;
    std::string spec_json; // what it was started from (see model_spec_json); "" if unknown
    Identity server;       // pid, start ticks, boot id
    std::optional<std::int64_t> port;
    std::optional<std::int64_t> owner_pid, owner_start_ticks;
    std::optional<std::int64_t> started_at, ready_at, last_used, exit_code;
    // The slot cap in force on this server: its model's max_concurrent when it started (a
    // restart picks up a change). nullopt in a row of an earlier llmctl or a rebuilt one: each
    // acquirer's config decides.
    std::optional<std::int64_t> max_concurrent;
    // Memory pools (llmctl.toml(5), MEMORY): the pool the server counts against ("" none), the
    // bytes it counts and how they were known ("declared", "estimated" or "measured"), and
    // whether it may be evicted. An `admitting` row (a start waiting for its victims to exit)
    // has them and an owner, but no process: its pid is 0.
    std::string pool, memory_source;
    std::optional<std::int64_t> memory;
    bool pin = false;
    // Supervision (issue 20): the monitor its server runs under (pid 0: none, a row of an
    // earlier llmctl or a rebuilt one), the config file it came from ("<built-in>", a path; ""
    // unknown) and how many policy restarts led to it since the last `start`. A `restarting`
    // row is a policy restart waiting for its delay: the dead server's identity, the restarter
    // as its owner.
    Identity monitor;
    std::string origin;
    std::int64_t restarts = 0;

    // A URL a client can use (IPv6 in brackets, a wildcard bind as loopback); "" without a port.
    std::string url() const { return port ? http_url(host, static_cast<int>(*port)) : std::string(); }
};

// All rows, ordered by name.
std::vector<ServerRow> load_servers(Store& store);

// The process identity kept in three columns starting at `col`: pid, start ticks, boot id
// (lease, exec user and server owner rows all store it so).
Identity identity_at(Stmt& q, int col);

// The rows of a memory pool, ordered by name, without argv, log_path, error and spec (empty).
std::vector<ServerRow> load_pool_servers(Store& store, const std::string& pool);

// The row of one server (the name is the primary key).
std::optional<ServerRow> find_server(Store& store, const std::string& name);

// Prepares insert_server's statement without running it (see read_before_deciding).
void warm_server_insert(Store& store);

// Inserts a row with every column of `r` (an empty error or spec is stored as NULL).
void insert_server(Store& store, const ServerRow& r);

// The invocation that owns a starting or stopping row (pid 0 when none); rows keep no boot id
// for it, as a reboot leaves no owner alive.
Identity owner_of(const ServerRow& r);

// True when a row has an owner and it is alive.
bool owner_alive(const ServerRow& r);

// The slot cap a lease on this server's model is granted under (ServerRow::max_concurrent):
// the recorded one while the row names a live server, else `configured` (the acquirer's).
int slot_cap(const ServerRow& row, int configured);

// The status a reader reports: the stored one, or "dead" when a live status's process is gone.
std::string effective_status(const ServerRow& row);

} // namespace llmctl
