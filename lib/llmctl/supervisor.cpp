#include "llmctl/supervisor.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/fault.hpp"
#include "llmctl/health.hpp"
#include "llmctl/lock.hpp"
#include "llmctl/logfile.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/ports.hpp"
#include "llmctl/recovery.hpp"
#include "llmctl/signal.hpp"
#include "llmctl/spawn.hpp"
#include "llmctl/strings.hpp"

#include <algorithm>
#include <csignal>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace llmctl {

namespace {

using clock = std::chrono::steady_clock;

std::string new_instance_id() {
    std::random_device rd;
    return fmt::format("{:08x}{:08x}", rd(), rd());
}

// The last lines of a log, read from its end (a log can be huge).
std::string log_tail(const std::string& path, std::size_t lines) {
    return last_lines(read_tail(path, 64 * 1024).value_or(""), lines);
}

// Reaps our own child if it exited; returns its status description, or nullopt while it runs.
std::optional<std::string> child_exit(const Identity& server) {
    int status = 0;
    pid_t r = ::waitpid(server.pid, &status, WNOHANG);
    if (r == server.pid) {
        if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
        if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
        return std::string("exited");
    }
    if (r < 0 && !is_alive(server)) return std::string("exited");
    if (r == 0 && !is_alive(server)) return std::string("exited");
    return std::nullopt;
}

// True when the NUL-separated environment block `env` holds the entry `needle` (KEY=value).
bool has_entry(const std::string& env, const std::string& needle) {
    std::size_t pos = 0;
    while (pos < env.size()) {
        std::size_t end = env.find('\0', pos);
        if (end == std::string::npos) end = env.size();
        if (env.compare(pos, end - pos, needle) == 0) return true;
        pos = end + 1;
    }
    return false;
}

bool environ_has(pid_t pid, const std::string& needle) {
    auto env = read_file("/proc/" + std::to_string(pid) + "/environ");
    return env && has_entry(*env, needle);
}

constexpr int kMaxPortAttempts = 3;
constexpr int kMaxPreemptions = 5;

// SIGKILLs every process and waits (bounded) until none is alive; a zombie counts as gone.
void kill_and_wait(const std::vector<Identity>& procs) {
    for (auto& p : procs) signal_identity(p, SIGKILL);
    wait_gone(procs, std::chrono::steady_clock::now() + std::chrono::seconds(1));
}

// True when our starting row is gone or being stopped: someone stopped the server on purpose.
bool taken_over(const std::string& state_dir, const std::string& name, const std::string& instance) {
    auto reader = Store::open_read(state_db_path(state_dir));
    if (!reader) return true;
    auto r = find_server(*reader, name);
    return !r || r->instance != instance || r->status == "stopping";
}

void delete_row(Store& store, const std::string& name) {
    store.prepare("DELETE FROM servers WHERE name = ?").bind(1, name).run();
}

} // namespace

std::vector<Identity> server_processes(const Identity& server, const std::string& instance) {
    std::vector<Identity> out;
    std::string marker = "LLMCTL_INSTANCE=" + instance;
    uid_t me = ::geteuid();
    for (pid_t pid : list_pids()) {
        auto st = read_proc_stat(pid);
        if (!st || st->state == 'Z' || st->state == 'X') continue;
        bool ours = (server.pid > 0 && (st->session == server.pid || st->pgrp == server.pid) &&
                     is_alive(server)) ||
                    pid == server.pid;
        if (!ours && !instance.empty()) {
            struct stat sb {};
            std::string dir = "/proc/" + std::to_string(pid);
            if (::stat(dir.c_str(), &sb) == 0 && sb.st_uid == me) ours = environ_has(pid, marker);
        }
        if (pid == server.pid && st->start_ticks != server.start_ticks) ours = false; // recycled
        if (ours) out.push_back(Identity{pid, st->start_ticks, boot_id()});
    }
    return out;
}

// Servers of this name that run without a row (their row deleted by hand or lost to damage: a
// dying start cannot leave one, thanks to the spawn gate) are orphans: kill them rather than let
// two run (reap does the same for every name). Called by the start that spawned, after its
// commit: the /proc scan costs time in proportion to every process on the machine, so it runs
// outside the lock and in one start per spawn, not in each of many racing starts. The lock is
// taken only when there is a candidate, to check it against the rows.
void kill_orphans_of(const std::string& state_dir, const std::string& name, const std::string& ours) {
    std::vector<MarkedProcess> candidates;
    for (auto& m : scan_marked(state_dir))
        if (m.name == name && m.instance != ours) candidates.push_back(std::move(m));
    if (candidates.empty()) return;
    auto locked = open_locked(state_dir);
    auto& store = locked.store;
    Transaction tx(store);
    auto rows = load_servers(store);
    for (auto& m : candidates) {
        if (std::any_of(rows.begin(), rows.end(), [&](const ServerRow& r) { return r.instance == m.instance; })) continue;
        if (signal_identity(m.id, SIGKILL) == SignalResult::sent)
            store.add_event(name, "orphan_killed", fmt::format("pid {}", m.id.pid));
    }
    tx.commit();
}

StartResult start_server(const std::string& state_dir, const ModelConfig& model, const StartOptions& opts) {
    if (model.external())
        throw Error(Exit::usage, fmt::format("model \"{}\" is external ({}): llmctl does not start it", model.name, model.url));
    ensure_state_dir(state_dir);
    recover_lost_state(state_dir);
    // Hot path, read-only and lock-free: a running server answers at once.
    if (auto reader = Store::open_read(state_db_path(state_dir))) {
        std::optional<ServerRow> r;
        {
            Transaction snap(*reader, Transaction::Kind::deferred);
            r = find_server(*reader, model.name);
        }
        if (r && r->status == "running" && is_alive(r->server)) {
            touch_last_used(state_dir, *r, model.idle_timeout);
            StartResult res;
            res.url = r->url();
            res.already_running = true;
            res.pid = r->server.pid;
            res.port = static_cast<int>(r->port.value_or(0));
            return res;
        }
    }
    auto note = [&](const std::string& s) { if (opts.progress) opts.progress(s); };
    // A log above log_max_size is rotated before a new server appends to it (per-log lock only).
    try {
        rotate_log(log_path(state_dir, model.name), model.log_max_size, model.log_keep);
    } catch (const Error& e) {
        note(fmt::format("could not rotate the log of {}: {}", model.name, e.what()));
    }
    Identity me = self_identity();
    Millis startup = opts.timeout.value_or(model.startup_timeout);
    bool announced = false;
    auto began = clock::now();
    auto waited = [&](const std::string& log) {
        if (opts.waiting) opts.waiting(log, std::chrono::duration_cast<Millis>(clock::now() - began));
    };
    int preemptions = 0;      // times a concurrent stop took our starting server away
    std::set<int> lost_ports; // ports a stranger took from us during this invocation
    for (int attempt = 1;; ++attempt) {
        StartResult res;
        ServerRow row;
        for (;;) {
            auto locked = open_locked(state_dir);
            auto& lock = locked.lock;
            auto& store = locked.store;
            Transaction tx(store);
            auto existing = find_server(store, model.name);
            if (existing) {
                const auto& r = *existing;
                bool server_alive = is_alive(r.server);
                Identity owner{static_cast<pid_t>(r.owner_pid.value_or(0)), static_cast<std::uint64_t>(r.owner_start_ticks.value_or(0)), boot_id()};
                if (r.status == "running" && server_alive) {
                    tx.commit();
                    res.url = r.url();
                    res.already_running = true;
                    res.pid = r.server.pid;
                    res.port = static_cast<int>(r.port.value_or(0));
                    return res;
                }
                if ((r.status == "starting" || r.status == "stopping") && is_alive(owner) && owner != me) {
                    // Another invocation is on it: wait outside the lock for the row to settle.
                    tx.commit();
                    lock.release();
                    if (!announced && opts.detail) opts.detail(fmt::format("{} is {} (by pid {}); waiting", model.name, r.status, owner.pid));
                    announced = true;
                    // Poll the row without the lock (a WAL read never blocks the writer) until it
                    // settles or its owner dies, then decide again under the lock.
                    for (auto backoff = std::chrono::milliseconds(5);; backoff = std::min(backoff * 2, std::chrono::milliseconds(100))) {
                        std::this_thread::sleep_for(backoff);
                        waited(r.log_path);
                        if (!is_alive(owner)) break;
                        auto reader = Store::open_read(state_db_path(state_dir));
                        if (!reader) break;
                        auto now_row = find_server(*reader, model.name);
                        if (!now_row || now_row->status != r.status || now_row->instance != r.instance) break;
                    }
                    continue;
                }
                if (r.status == "starting" && server_alive) {
                    // Its owner died while it started: adopt it and finish the health wait.
                    store.prepare("UPDATE servers SET owner_pid=?, owner_start_ticks=? WHERE name=?")
                        .bind(1, me.pid).bind(2, static_cast<std::int64_t>(me.start_ticks)).bind(3, model.name).run();
                    store.add_event(model.name, "adopted", fmt::format("pid {}", r.server.pid));
                    tx.commit();
                    row = r;
                    res.adopted = true;
                    break;
                }
                // Anything else is dead (or a failed row): clear it, killing leftovers of ours.
                for (auto& p : server_processes(server_alive ? r.server : Identity{}, r.instance)) signal_identity(p, SIGKILL);
                delete_row(store, model.name);
                store.add_event(model.name, "cleared", fmt::format("status {} pid {} was dead", r.status, r.server.pid));
            }
            // Pick a port inside the lock.
            std::set<int> held;
            for (auto& r : load_servers(store))
                if (r.port && r.status != "failed") held.insert(static_cast<int>(*r.port));
            held.insert(lost_ports.begin(), lost_ports.end());
            fault_point("pick-port");
            int port;
            if (auto fixed = opts.port ? opts.port : model.port) {
                if (held.count(*fixed) || !port_is_free(model.host, *fixed))
                    throw Error(Exit::server, fmt::format("port {} on {} is in use, and model \"{}\" is configured to use it", *fixed, model.host, model.name),
                                "free the port, or remove \"port\" to pick one from port_range");
                port = *fixed;
            } else {
                auto p = pick_port(model.host, model.port_min, model.port_max, held);
                if (!p) throw Error(Exit::server, fmt::format("no free port in {}-{} on {}", model.port_min, model.port_max, model.host),
                                    "widen port_range or stop some servers");
                port = *p;
            }
            fault_point("port");
            std::string instance = new_instance_id();
            SpawnRequest req;
            for (auto& a : model.command) req.argv.push_back(expand_placeholders(a, model.host, port, model.name));
            for (auto& [k, v] : model.env) req.env[k] = expand_placeholders(v, model.host, port, model.name);
            req.env["LLMCTL_INSTANCE"] = instance;
            req.env["LLMCTL_NAME"] = model.name;
            req.env["LLMCTL_PORT"] = std::to_string(port);
            req.env["LLMCTL_HOME"] = state_dir;
            req.env["LLMCTL_HOST"] = model.host;
            req.cwd = model.cwd.empty() ? std::string() : expand_placeholders(model.cwd, model.host, port, model.name);
            req.log_path = log_path(state_dir, model.name);
            GatedSpawn spawned = spawn_gated(req);
            Identity server = spawned.id;
            fault_point("spawn");
            std::int64_t now = now_ms();
            // If the row cannot be written (disk full, file size limit, I/O error), the server
            // just spawned would be an orphan: kill it before reporting the error.
            struct KillUnlessCommitted {
                Identity id;
                bool committed = false;
                ~KillUnlessCommitted() {
                    if (!committed) signal_identity(id, SIGKILL);
                }
            } guard{server};
            store.prepare("INSERT INTO servers(name, instance, status, pid, start_ticks, boot_id, port, host, argv, log_path, owner_pid, "
                          "owner_start_ticks, started_at, last_used, config_hash) VALUES(?,?, 'starting', ?,?,?,?,?,?,?,?,?,?,?,?)")
                .bind(1, model.name).bind(2, instance).bind(3, server.pid).bind(4, static_cast<std::int64_t>(server.start_ticks))
                .bind(5, server.boot_id).bind(6, port).bind(7, model.host).bind(8, nlohmann::json(req.argv).dump())
                .bind(9, req.log_path).bind(10, me.pid).bind(11, static_cast<std::int64_t>(me.start_ticks)).bind(12, now)
                .bind(13, now).bind(14, config_hash(model)).run();
            store.add_event(model.name, "spawned", fmt::format("pid {} port {}", server.pid, port));
            tx.commit();
            guard.committed = true;
            spawned.open(); // only a server with a committed row ever runs its command
            lock.release();
            fault_point("committed");
            kill_orphans_of(state_dir, model.name, instance);
            row = ServerRow{};
            row.name = model.name;
            row.instance = instance;
            row.server = server;
            row.port = port;
            row.host = model.host;
            row.log_path = req.log_path;
            break;
        }
        res.pid = row.server.pid;
        res.port = static_cast<int>(row.port.value_or(0));
        res.url = row.url();
        if (!opts.wait) return res;

        // Health wait, outside the lock.
        auto deadline = clock::now() + startup;
        auto backoff = std::chrono::milliseconds(25);
        auto fail_row = [&](const std::string& why) {
            auto locked = open_locked(state_dir);
            auto& store = locked.store;
            Transaction tx(store);
            store.prepare("UPDATE servers SET status='failed', error=? WHERE name=? AND instance=?")
                .bind(1, why).bind(2, model.name).bind(3, row.instance).run();
            store.add_event(model.name, "failed", why);
            tx.commit();
        };
        bool port_lost = false, preempted = false;
        for (;;) {
            std::vector<pid_t> pids;
            for (auto& p : server_processes(row.server, row.instance)) pids.push_back(p.pid);
            auto listeners = port_listeners(row.host, res.port, pids);
            if (auto ex = child_exit(row.server)) {
                // Stopped on purpose by a `stop` (or reap) that came after us: start again.
                if (taken_over(state_dir, model.name, row.instance)) {
                    preempted = true;
                    break;
                }
                // Did it die because somebody else took the port between our pick and its bind?
                if (port_listeners(row.host, res.port, {}).stranger) {
                    port_lost = true;
                    break;
                }
                std::string why = fmt::format("server {} {} during startup", model.name, *ex);
                for (auto& p : server_processes(Identity{}, row.instance)) signal_identity(p, SIGKILL);
                fail_row(why);
                throw Error(Exit::server, fmt::format("{}; last lines of {}:\n{}", why, row.log_path, log_tail(row.log_path, 20)),
                            fmt::format("see the whole log: llmctl logs {}", model.name));
            }
            if (listeners.stranger) {
                // A stranger listens on our port (SO_REUSEPORT lets two share it): it may answer
                // our probes and would take part of the traffic. Never call that ready.
                port_lost = true;
                break;
            }
            if (listeners.ours && probe_health(row.host, res.port, model.health, std::chrono::milliseconds(1000)) == 200) {
                // Re-check after the probe: the answer came from a socket that is ours alone.
                pids.clear();
                for (auto& p : server_processes(row.server, row.instance)) pids.push_back(p.pid);
                auto after = port_listeners(row.host, res.port, pids);
                if (after.ours && !after.stranger) break;
                if (after.stranger) {
                    port_lost = true;
                    break;
                }
            }
            if (clock::now() >= deadline) {
                for (auto& p : server_processes(row.server, row.instance)) signal_identity(p, SIGKILL);
                std::string why = fmt::format("server {} not healthy after {}", model.name, format_duration(startup));
                fail_row(why);
                throw Error(Exit::timeout, why + "; last lines of " + row.log_path + ":\n" + log_tail(row.log_path, 20),
                            "raise startup_timeout (or --timeout) if the model needs longer to load");
            }
            std::this_thread::sleep_for(backoff);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
            waited(row.log_path);
        }
        if (preempted) {
            if (++preemptions > kMaxPreemptions)
                throw Error(Exit::server, fmt::format("{} was stopped by other llmctl invocations {} times while starting", model.name, kMaxPreemptions),
                            "something keeps stopping it: look for a loop running llmctl stop or reap --idle-timeout");
            if (opts.detail) opts.detail(fmt::format("{} was stopped by another llmctl while starting; starting again", model.name));
            continue;
        }
        if (port_lost) {
            kill_and_wait(server_processes(is_alive(row.server) ? row.server : Identity{}, row.instance));
            child_exit(row.server);
            bool fixed = opts.port || model.port;
            std::string why = fmt::format("port {} was taken by another process while {} started", res.port, model.name);
            if (fixed || attempt >= kMaxPortAttempts) {
                fail_row(why);
                throw Error(Exit::server, why + (fixed ? "" : fmt::format(" ({} attempts)", attempt)),
                            fixed ? "free the port, or remove \"port\" to pick one from port_range"
                                  : "something keeps binding ports in port_range: pick another range");
            }
            note(why + "; retrying on another port");
            lost_ports.insert(res.port);
            auto locked = open_locked(state_dir);
            auto& store = locked.store;
            Transaction tx(store);
            store.prepare("DELETE FROM servers WHERE name=? AND instance=?").bind(1, model.name).bind(2, row.instance).run();
            store.add_event(model.name, "port_lost", why);
            tx.commit();
            continue;
        }
        fault_point("ready");
        auto locked = open_locked(state_dir);
        auto& store = locked.store;
        Transaction tx(store);
        std::int64_t now = now_ms();
        store.prepare("UPDATE servers SET status='running', ready_at=?, last_used=? WHERE name=? AND instance=? AND status='starting'")
            .bind(1, now).bind(2, now).bind(3, model.name).bind(4, row.instance).run();
        if (store.changes() == 0) {
            // A stop took the row over while we waited for health: decide again.
            tx.commit();
            if (++preemptions > kMaxPreemptions)
                throw Error(Exit::server, fmt::format("{} was stopped by other llmctl invocations {} times while starting", model.name, kMaxPreemptions));
            continue;
        }
        store.add_event(model.name, "ready", fmt::format("pid {} port {}", row.server.pid, res.port));
        tx.commit();
        return res;
    }
}

void touch_last_used(const std::string& state_dir, const ServerRow& row, Millis idle_timeout) {
    std::int64_t now = now_ms();
    std::int64_t stale_after = std::max<std::int64_t>(idle_timeout.count() / 10, 1000);
    if (row.last_used && now - *row.last_used < stale_after) return;
    auto locked = open_locked(state_dir);
    auto& store = locked.store;
    store.prepare("UPDATE servers SET last_used=? WHERE name=? AND instance=? AND (last_used IS NULL OR last_used < ?)")
        .bind(1, now).bind(2, row.name).bind(3, row.instance).bind(4, now).run();
}

int chats_in_flight(const std::string& state_dir, const std::string& model) {
    auto reader = Store::open_read(state_db_path(state_dir));
    if (!reader) return 0;
    auto q = reader->prepare("SELECT owner_pid, owner_start_ticks, owner_boot_id FROM leases WHERE model=? AND state='active'");
    q.bind(1, model);
    int n = 0;
    while (q.step())
        n += is_alive(identity_at(q, 0)) ? 1 : 0;
    return n;
}

bool stop_server(const std::string& state_dir, const std::string& name, Millis stop_timeout, Millis drain,
                 const std::function<void(const std::string&)>& progress, const std::string& event,
                 const std::string& detail, const std::function<bool(const ServerRow&)>& still) {
    if (!check_state_dir(state_dir)) return false;
    recover_lost_state(state_dir);
    Identity me = self_identity();
    ServerRow row;
    {
        auto locked = open_locked(state_dir);
        auto& store = locked.store;
        Transaction tx(store);
        auto r = find_server(store, name);
        if (!r) return false;
        if (still && !still(*r)) return false;
        row = *r;
        store.prepare("UPDATE servers SET status='stopping', owner_pid=?, owner_start_ticks=? WHERE name=?")
            .bind(1, me.pid).bind(2, static_cast<std::int64_t>(me.start_ticks)).bind(3, name).run();
        tx.commit();
    }
    Identity server = is_alive(row.server) ? row.server : Identity{};
    // Drain: the row says `stopping`, so no new chat gets a slot; the ones in flight finish.
    if (drain.count() > 0 && server.pid > 0) {
        auto drain_end = clock::now() + drain;
        auto backoff = std::chrono::milliseconds(2);
        for (int last = -1;;) {
            int n = chats_in_flight(state_dir, name);
            if (n == 0 || !is_alive(server)) break;
            if (n != last && progress)
                progress(fmt::format("draining {}: {} chat(s) in flight (up to {}; --no-drain skips this)", name, n, format_duration(drain)));
            last = n;
            if (clock::now() >= drain_end) {
                if (progress) progress(fmt::format("{}: drain_timeout {} passed with {} chat(s) in flight; stopping anyway", name, format_duration(drain), n));
                break;
            }
            fault_point("draining");
            std::this_thread::sleep_for(backoff);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(50));
        }
    }
    auto procs = server_processes(server, row.instance);
    if (!procs.empty() && progress) progress(fmt::format("stopping {} ({} process(es))", name, procs.size()));
    for (auto& p : procs) signal_identity(p, SIGTERM);
    fault_point("stop-signalled");
    auto deadline = clock::now() + stop_timeout;
    wait_gone(procs, deadline);
    // Children forked since the first scan are found by the second.
    for (int round = 0; round < 50; ++round) {
        auto rest = server_processes(server, row.instance);
        for (auto& p : procs)
            if (is_alive(p)) rest.push_back(p);
        if (rest.empty()) break;
        for (auto& p : rest) signal_identity(p, SIGKILL);
        wait_gone(rest, clock::now() + std::chrono::milliseconds(100));
    }
    auto locked = open_locked(state_dir);
    auto& store = locked.store;
    Transaction tx(store);
    store.prepare("DELETE FROM servers WHERE name=? AND instance=?").bind(1, name).bind(2, row.instance).run();
    store.add_event(name, event, fmt::format("pid {}", row.server.pid) + (detail.empty() ? "" : "; " + detail));
    tx.commit();
    return true;
}

} // namespace llmctl
