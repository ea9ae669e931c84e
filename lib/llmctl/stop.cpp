// Stopping a server: mark it stopping, drain the chats in flight, SIGTERM, SIGKILL after the stop
// timeout, delete the row. Every signal goes to a proven identity (pidfd).

#include "llmctl/supervisor.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/exits.hpp"
#include "llmctl/fault.hpp"
#include "llmctl/holds.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/recovery.hpp"
#include "llmctl/signal.hpp"
#include "llmctl/strings.hpp"

#include <algorithm>
#include <csignal>
#include <fmt/format.h>
#include <map>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace llmctl {

namespace {

using clock = std::chrono::steady_clock;

bool environ_has(pid_t pid, const std::string& entry) {
    auto env = proc_environ(pid);
    return std::find(env.begin(), env.end(), entry) != env.end();
}

// Marks the row `stopping` with us as its owner, so no chat gets a new slot on it, and holds
// `hold` down (with no row too). Returns the row as it was (nullopt: no row, or `still` called
// the stop off). On a full disk the mark cannot be written: the row read is returned all the same
// (the stop goes on from it) and `res.unrecorded` says why.
std::optional<ServerRow> mark_stopping(const std::string& state_dir, const std::string& name, const StillWanted& still,
                                       const ModelConfig* hold, StopResult& res) {
    std::optional<ServerRow> row;
    try {
        auto locked = open_locked(state_dir);
        auto& store = locked.store;
        Transaction tx(store);
        row = find_server(store, name);
        if (row && still && !still(store, *row)) return std::nullopt;
        bool held = hold && hold_down(store, *hold);
        // A failed row keeps its port but no longer holds it (another server may have it now):
        // marking it `stopping` would make two live rows claim one port. Nothing of it runs. Nor
        // of an admitting one (a start evicting to fit: no process yet, so no pid a stopping row
        // must have); deleting its row (below) is the stop, and its start decides again.
        if (!row || row->status == "failed" || row->status == "admitting") {
            tx.commit();
            res.held = held;
            return row;
        }
        Identity me = self_identity();
        store.prepare("UPDATE servers SET status='stopping', owner_pid=?, owner_start_ticks=? WHERE name=?")
            .bind(1, me.pid)
            .bind(2, static_cast<std::int64_t>(me.start_ticks))
            .bind(3, name)
            .run();
        tx.commit();
        res.held = held;
    } catch (const StateWriteError& e) {
        res.unrecorded = e.what(); // (with no row, only a hold was to be written)
    }
    return row;
}

// Waits up to `drain` for the chats in flight on `name` to finish (none gets a new slot meanwhile).
void drain_chats(const std::string& state_dir, const std::string& name, const Identity& server, Millis drain,
                 const std::function<void(const std::string&)>& progress) {
    if (drain.count() <= 0 || server.pid <= 0) return;
    auto drain_end = clock::now() + drain;
    auto backoff = std::chrono::milliseconds(2);
    for (int last = -1;;) {
        int n = chats_in_flight(state_dir, name);
        if (n == 0 || !is_alive(server)) return;
        if (n != last && progress)
            progress(fmt::format("draining {}: {} chat(s) in flight (up to {}; --no-drain skips this)", name, n, format_duration(drain)));
        last = n;
        if (clock::now() >= drain_end) {
            if (progress)
                progress(
                    fmt::format("{}: drain_timeout {} passed with {} chat(s) in flight; stopping anyway", name, format_duration(drain), n));
            return;
        }
        fault_point("draining");
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(50));
    }
}

} // namespace

void terminate_server(const Identity& server, const std::string& instance, Millis stop_timeout,
                      const std::function<void(const std::string&)>& progress, const std::string& name) {
    auto procs = server_processes(server, instance);
    if (!procs.empty() && progress) progress(fmt::format("stopping {} ({} process(es))", name, procs.size()));
    signal_all(procs, SIGTERM);
    fault_point("stop-signalled");
    wait_gone(procs, clock::now() + stop_timeout);
    for (int round = 0; round < 50; ++round) {
        auto rest = server_processes(server, instance);
        for (auto& p : procs)
            if (is_alive(p)) rest.push_back(p);
        if (rest.empty()) return;
        signal_all(rest, SIGKILL);
        wait_gone(rest, clock::now() + std::chrono::milliseconds(100));
    }
}

std::string record_stopped(const std::string& state_dir, const ServerRow& row, const std::string& event, const std::string& detail) {
    try {
        auto locked = open_locked(state_dir);
        auto& store = locked.store;
        Transaction tx(store);
        record_unknown_exit(store, row); // replaced by its monitor's record, which comes soon if it lives
        store.prepare("DELETE FROM servers WHERE name=? AND instance=?").bind(1, row.name).bind(2, row.instance).run();
        store.add_event(row.name, event, fmt::format("pid {}", row.server.pid) + (detail.empty() ? "" : "; " + detail));
        tx.commit();
    } catch (const StateWriteError& e) {
        return e.what();
    }
    return {};
}

std::vector<Identity> server_processes(const Identity& server, const std::string& instance) {
    std::vector<Identity> out;
    std::string marker = "LLMCTL_INSTANCE=" + instance;
    bool server_alive = server.pid > 0 && is_alive(server);
    for (pid_t pid : list_pids()) {
        auto st = read_proc_stat(pid);
        if (!st || st->state == 'Z' || st->state == 'X') continue;
        bool ours = (server_alive && (st->session == server.pid || st->pgrp == server.pid)) || pid == server.pid;
        if (!ours && !instance.empty()) {
            if (owned_by_me(pid)) ours = environ_has(pid, marker);
        }
        if (pid == server.pid && st->start_ticks != server.start_ticks) ours = false; // recycled
        if (ours) out.push_back(Identity{pid, st->start_ticks, boot_id()});
    }
    return out;
}

int chats_in_flight(const std::string& state_dir, const std::string& model) {
    auto reader = Store::open_read(state_db_path(state_dir));
    if (!reader) return 0;
    auto q = reader->prepare("SELECT owner_pid, owner_start_ticks, owner_boot_id FROM leases WHERE model=? AND state='active'");
    q.bind(1, model);
    int n = 0;
    while (q.step()) n += is_alive(identity_at(q, 0)) ? 1 : 0;
    return n;
}

bool claim_last_used_write(const ServerRow& row, Millis idle_timeout, std::int64_t now) {
    std::int64_t stale_after = std::max<std::int64_t>(idle_timeout.count() / 10, 1000);
    if (row.last_used && now - *row.last_used < stale_after) return false;
    // Once per server and stale_after in this process: a gateway's requests that all saw the
    // same stale row would each open the file to write the same clock.
    static std::mutex mu;
    static std::map<std::string, std::int64_t> touched; // instance -> when
    std::lock_guard<std::mutex> g(mu);
    auto& at = touched[row.instance];
    if (now - at < stale_after) return false;
    at = now;
    if (touched.size() > 64) std::erase_if(touched, [&](const auto& e) { return now - e.second >= stale_after; });
    return true;
}

void write_last_used(Store& store, const ServerRow& row, std::int64_t now) {
    store.prepare("UPDATE servers SET last_used=? WHERE name=? AND instance=? AND (last_used IS NULL OR last_used < ?)")
        .bind(1, now)
        .bind(2, row.name)
        .bind(3, row.instance)
        .bind(4, now)
        .run();
}

void touch_last_used(const std::string& state_dir, const ServerRow& row, Millis idle_timeout) {
    std::int64_t now = now_ms();
    if (!claim_last_used_write(row, idle_timeout, now)) return;
    try {
        // One statement, no decision: SQLite serialises it with the lock holders' transactions,
        // so it needs no state lock (which keeps `start` of a running server lock-free).
        if (auto store = Store::open_update(state_db_path(state_dir))) write_last_used(*store, row, now);
    } catch (const Error&) {
        // A full disk or a busy file: a stale timestamp only makes idle reaping come sooner.
    }
}

StopResult stop_server(const std::string& state_dir, const std::string& name, Millis stop_timeout, Millis drain,
                       const std::function<void(const std::string&)>& progress, const std::string& event, const std::string& detail,
                       const StillWanted& still, const ModelConfig* hold) {
    StopResult res;
    if (!check_state_dir(state_dir) && !(hold && stop_holds(*hold))) return res;
    recover_lost_state(state_dir);
    auto row = mark_stopping(state_dir, name, still, hold, res);
    if (!row) return res;
    fault_point("marked-stopping");
    Identity server = is_alive(row->server) ? row->server : Identity{};
    drain_chats(state_dir, name, server, drain, progress);
    terminate_server(server, row->instance, stop_timeout, progress, name);
    res.unrecorded = record_stopped(state_dir, *row, event, detail); // tried even if the mark failed: space may be back
    res.stopped = true;
    res.pid = row->server.pid;
    return res;
}

} // namespace llmctl
