// Starting a server (ARCHITECTURE.md): decide under the state lock what the row of the name calls for,
// act on it outside the lock, and wait for health; never two servers of one name.
//
//   start_server
//     running_now            hot path: a running server, read without the lock
//     decide                 under the lock: running | another live start | a dead stop to finish
//                            | a dead start to adopt | spawn_and_commit
//     wait_for_other_start   outside the lock, until that row settles
//     finish_dead_stop       a stop whose llmctl died is finished properly (drain, TERM, KILL)
//     wait_healthy           ready | preempted | port_lost; a death or a timeout fails the start
//     mark_running           ready, unless a stop took the row over meanwhile

#include "llmctl/supervisor.hpp"

#include "llmctl/clock_text.hpp"
#include "llmctl/admission.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/exec_users.hpp"
#include "llmctl/exits.hpp"
#include "llmctl/fault.hpp"
#include "llmctl/fd.hpp"
#include "llmctl/files.hpp"
#include "llmctl/health.hpp"
#include "llmctl/holds.hpp"
#include "llmctl/lock.hpp"
#include "llmctl/logfile.hpp"
#include "llmctl/lookup.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/ports.hpp"
#include "llmctl/prober.hpp"
#include "llmctl/recovery.hpp"
#include "llmctl/signal.hpp"
#include "llmctl/spawn.hpp"
#include "llmctl/strings.hpp"
#include "llmctl/json_text.hpp"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace llmctl {

namespace {

using clock = std::chrono::steady_clock;

constexpr int k_max_port_attempts = 3;
constexpr int k_max_preemptions = 5;

// The state of one start_server call, shared by its steps.
struct Starting {
    Starting(const std::string& d, const ModelConfig& m, const StartOptions& o) : dir(d), model(m), opts(o) {}
    const std::string& dir;
    const ModelConfig& model;
    const StartOptions& opts;
    Identity me = self_identity();
    clock::time_point began = clock::now();
    int preemptions = 0;      // times a concurrent stop took our starting server away
    int port_attempts = 0;    // ports lost to a stranger so far
    std::set<int> lost_ports; // those ports
    bool announced = false;
    // A model in a memory pool: the pool, what the model needs (measured ones added under the
    // lock), and the wait for memory.
    const PoolConfig* pool = nullptr;
    std::uint64_t budget = 0;
    Footprint expected, need;
    std::optional<clock::time_point> memory_deadline;
    Millis memory_wait_limit{0};
    std::string memory_message; // the last one shown
    // What this start holds in the state file until a decision that gives it up commits (a failed
    // spawn rolls that decision back): a place in the pool's queue, an admitting row. Both are
    // let go however the start ends (LeaveQueueAtEnd): a live serve must not keep them.
    bool in_queue = false;
    bool admitting = false;
    bool evicted = false;           // our victims just left: the next decision is ours, whoever queued meanwhile
    std::string restarted_instance; // a policy restart: the instance of the server that exited
    Liveness alive;                 // processes of the pool seen before the lock (see Liveness)

    void note(const std::string& s) const {
        if (opts.progress) opts.progress(s);
    }
    void detail(const std::string& s) const {
        if (opts.detail) opts.detail(s);
    }
    void waited(const std::string& log) const {
        if (opts.waiting) opts.waiting(log, std::chrono::duration_cast<Millis>(clock::now() - began));
    }
    void check_cancelled() const {
        if (opts.cancelled && opts.cancelled())
            throw Error(Exit::interrupted, fmt::format("interrupted while {} was starting", model.name));
    }
    // Counts a stop that took our starting server away; past k_max_preemptions something keeps doing it.
    void preempted() {
        if (++preemptions > k_max_preemptions)
            throw Error(Exit::server,
                        fmt::format("{} was stopped by other llmctl invocations {} times while starting", model.name, k_max_preemptions),
                        "something keeps stopping it: look for a loop running llmctl stop or reap --idle-timeout");
        detail(fmt::format("{} was stopped by another llmctl while starting; starting again", model.name));
    }
};

enum class Found { running, other_start, dead_stop, adopted, spawned, admitting, queued };

struct Decision {
    Found found;
    ServerRow row;
    bool owner_died = false;          // adopted: its start died (rather than returning on purpose, --no-wait)
    std::vector<ServerRow> victims{}; // admitting: the servers to stop first
    std::string why{};                // queued: who holds the memory
};

std::string new_instance_id() {
    std::random_device rd;
    return fmt::format("{:08x}{:08x}", rd(), rd());
}

StartResult result_of(const ServerRow& row, bool already_running, bool adopted) {
    StartResult res;
    res.url = row.url();
    res.already_running = already_running;
    res.adopted = adopted;
    res.pid = row.server.pid;
    res.port = static_cast<int>(row.port.value_or(0));
    return res;
}

// `start NAME --port P` of a server that runs on another port: say so, and how to move it.
void check_requested_port(const Starting& s, const ServerRow& r) {
    if (!s.opts.port || !r.port || *s.opts.port == *r.port) return;
    throw Error(Exit::usage, fmt::format("{} already runs on port {} (pid {}), not {}", s.model.name, *r.port, r.server.pid, *s.opts.port),
                fmt::format("to move it: llmctl stop {} && llmctl start {} --port {}", s.model.name, s.model.name, *s.opts.port));
}

void use_as_exec(Starting& s, Store& store, const std::string& instance, bool spawned) {
    if (s.opts.exec_user) use_server(store, s.model.name, instance, spawned, *s.opts.exec_user);
}

// Hot path, read-only and lock-free: a running server answers at once.
std::optional<StartResult> running_now(Starting& s) {
    auto reader = Store::open_read(state_db_path(s.dir));
    if (!reader) return std::nullopt;
    std::optional<ServerRow> r;
    {
        Transaction snap(*reader, Transaction::Kind::deferred);
        r = find_server(*reader, s.model.name);
    }
    if (!r || r->status != "running" || !is_alive(r->server)) return std::nullopt;
    if (!row_matches_markers(s.dir, *r)) return std::nullopt; // damaged: repaired under the lock
    check_requested_port(s, *r);
    touch_last_used(s.dir, *r, s.model.idle_timeout);
    return result_of(*r, true, false);
}

// --- spawning ---------------------------------------------------------------------------------

// "pid 123 (python3)", for messages about a process we did not start.
std::string pid_and_name(pid_t pid) { return fmt::format("pid {} ({})", pid, proc_comm(pid)); }

// Who holds a port we cannot have, for the message: a server of ours, or a process by pid.
std::string port_holder(Store& store, const std::string& host, int port) {
    for (auto& r : load_servers(store))
        if (r.port && *r.port == port && r.status != "failed") return fmt::format("llmctl's server {} (pid {})", r.name, r.server.pid);
    if (auto pid = listening_pid(host, port)) return pid_and_name(*pid);
    return "another process (one this user cannot see, or one that just left)";
}

int pick_port_for(Starting& s, Store& store) {
    std::set<int> held;
    for (auto& r : load_servers(store))
        if (r.port && r.status != "failed") held.insert(static_cast<int>(*r.port));
    held.insert(s.lost_ports.begin(), s.lost_ports.end());
    fault_point("pick-port");
    const ModelConfig& m = s.model;
    if (auto fixed = s.opts.port ? s.opts.port : m.port) {
        if (held.count(*fixed) || !port_is_free(m.host, *fixed)) {
            std::string who = port_holder(store, m.host, *fixed);
            if (s.opts.port)
                throw Error(Exit::server, fmt::format("port {} on {} (--port) is in use by {}", *fixed, m.host, who),
                            "choose another --port, or leave it out to pick one from port_range");
            throw Error(Exit::server,
                        fmt::format("port {} on {} is in use by {}, and model \"{}\" is configured to use it", *fixed, m.host, who, m.name),
                        "free the port, or remove \"port\" to pick one from port_range");
        }
        return *fixed;
    }
    auto p = pick_port(m.host, m.port_min, m.port_max, held);
    if (!p)
        throw Error(Exit::server, fmt::format("no free port in {}-{} on {}", m.port_min, m.port_max, m.host),
                    "widen port_range or stop some servers");
    return *p;
}

// The llmctl a monitor becomes when its server exits: this binary, or the one beside it when
// this is not llmctl (a test binary).
std::string llmctl_binary() {
    std::string self = self_exe();
    return self.ends_with("/llmctl") ? self : self_exe_dir() + "/llmctl";
}

SpawnRequest spawn_request(const Starting& s, int port, const std::string& instance) {
    const ModelConfig& m = s.model;
    SpawnRequest req;
    for (auto& a : m.command) req.argv.push_back(expand_placeholders(a, m.host, port, m.name));
    for (auto& [k, v] : m.env) req.env[k] = expand_placeholders(v, m.host, port, m.name);
    req.env["LLMCTL_INSTANCE"] = instance;
    req.env["LLMCTL_NAME"] = m.name;
    req.env["LLMCTL_PORT"] = std::to_string(port);
    req.env["LLMCTL_HOME"] = s.dir; // canonical (resolve_state_dir): the only spelling a marker has
    req.env["LLMCTL_HOST"] = m.host;
    req.cwd = m.cwd.empty() ? std::string() : expand_placeholders(m.cwd, m.host, port, m.name);
    req.log_path = log_path(s.dir, m.name);
    req.monitor = MonitorSpec{bundled_monitor(), llmctl_binary(), s.dir, m.name, instance, m.origin, probe_spec_json(m)};
    return req;
}

// The line written to the log before the server's first byte: it separates runs, so an error
// shows the output of this run only.
std::string start_marker(const std::string& name, pid_t pid) { return fmt::format("--- llmctl: starting {} (pid {},", name, pid); }

void write_start_marker(const std::string& log, const std::string& name, pid_t pid, int port) {
    const std::string when = clock_text(std::time(nullptr), Zone::local, k_log_marker_time);
    std::string line = fmt::format("{} port {}) at {} ---\n", start_marker(name, pid), port, when);
    Fd fd(::open(log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW));
    if (fd.valid()) (void)!::write(fd.get(), line.data(), line.size()); // a full disk only costs the separator
}

// Under the lock: picks a port, forks the server behind its gate, commits its row, opens the
// gate (only a server with a committed row ever runs its command), releases the lock.
ServerRow spawn_and_commit(Starting& s, LockedStore& locked, Transaction& tx) {
    auto& store = locked.store;
    int port = pick_port_for(s, store);
    fault_point("port");
    std::string instance = new_instance_id();
    SpawnRequest req = spawn_request(s, port, instance);
    GatedSpawn spawned = spawn_gated(req);
    Identity server = spawned.id;
    fault_point("spawn");
    // If the row cannot be written (disk full, file size limit, I/O error), the server just
    // spawned would be an orphan: kill it before reporting the error.
    struct KillUnlessCommitted {
        Identity id;
        bool committed = false;
        ~KillUnlessCommitted() {
            if (!committed) signal_identity(id, SIGKILL);
        }
    } guard{server};
    ServerRow row;
    row.name = s.model.name;
    row.instance = instance;
    row.status = "starting";
    row.server = server;
    row.port = port;
    row.host = s.model.host;
    row.argv_json = json_text(req.argv);
    row.log_path = req.log_path;
    row.started_at = row.last_used = now_ms();
    row.config_hash = config_hash(s.model);
    row.spec_json = model_spec_json(s.model);
    row.max_concurrent = std::max(1, s.model.max_concurrent);
    row.monitor = spawned.monitor;
    row.origin = s.model.origin;
    row.restarts = s.opts.restarts;
    if (s.pool) {
        row.pool = s.pool->name;
        row.memory = static_cast<std::int64_t>(s.need.bytes);
        row.memory_source = s.need.source;
        row.pin = s.model.pin;
    }
    // With --no-wait nobody waits for its health: no owner, so the next start or reap finishes it.
    if (s.opts.wait) {
        row.owner_pid = s.me.pid;
        row.owner_start_ticks = static_cast<std::int64_t>(s.me.start_ticks);
    }
    insert_server(store, row);
    if (!s.opts.keep_warm && release_hold(store, s.model.name)) store.add_event(s.model.name, "released", "a start lets the hold go");
    if (!s.restarted_instance.empty()) // the execs that used the server that exited use this one (and stop it)
        store.prepare("UPDATE exec_users SET instance=? WHERE instance=?").bind(1, instance).bind(2, s.restarted_instance).run();
    use_as_exec(s, store, instance, true);
    store.add_event(s.model.name, "spawned", fmt::format("pid {} port {}", server.pid, port));
    tx.commit();
    guard.committed = true;
    write_start_marker(req.log_path, s.model.name, server.pid, port);
    spawned.open();
    locked.lock.release();
    fault_point("committed");
    kill_orphans_of(s.dir, s.model.name, instance);
    return row;
}

// --- the decision -----------------------------------------------------------------------------

// A running row whose server carries other markers (instance, host, port) is damaged: the
// process's markers are the truth (a flipped byte could make the host a public address).
ServerRow repaired_from_markers(Store& store, const ServerRow& r) {
    auto m = markers_of(r.server);
    if (!m)
        throw Error(Exit::failure,
                    fmt::format("the state file's row of {} names pid {}, which carries no llmctl markers: the row is damaged", r.name,
                                r.server.pid),
                    k_hint_corrupt);
    ServerRow fixed = r;
    fixed.instance = m->instance;
    fixed.host = m->host;
    fixed.port = m->port;
    store.prepare("UPDATE servers SET instance=?, host=?, port=? WHERE name=? AND instance=?")
        .bind(1, m->instance)
        .bind(2, m->host)
        .bind(3, m->port)
        .bind(4, r.name)
        .bind(5, r.instance)
        .run();
    store.add_event(r.name, "repaired",
                    fmt::format("row instance {} host {} port {} repaired to the server's markers {} {} {}", r.instance, r.host,
                                r.port.value_or(0), m->instance, m->host, m->port));
    return fixed;
}

// Under the lock, what an existing row calls for; nullopt: it was cleared (nothing of it lives).
std::optional<Decision> judge_existing(Starting& s, Store& store, const ServerRow& existing) {
    const ServerRow r = existing.status == "running" && is_alive(existing.server) && !row_matches_markers(s.dir, existing)
                            ? repaired_from_markers(store, existing)
                            : existing;
    bool server_alive = is_alive(r.server);
    Identity owner = owner_of(r);
    bool owner_alive = owner.pid > 0 && is_alive(owner);
    if (r.status == "admitting" && owner == s.me) { // ours, now that its victims are gone: admit again
        store.prepare("DELETE FROM servers WHERE name=? AND instance=?").bind(1, r.name).bind(2, r.instance).run();
        return std::nullopt;
    }
    if (r.status == "running" && server_alive) {
        check_requested_port(s, r);
        use_as_exec(s, store, r.instance, false);
        return Decision{Found::running, r};
    }
    if ((r.status == "starting" || r.status == "stopping" || r.status == "admitting") && owner_alive && owner != s.me) {
        if (r.status == "starting") use_as_exec(s, store, r.instance, false); // a user of that start
        return Decision{Found::other_start, r};
    }
    if (r.status == "starting" && server_alive) {
        // Its start died (or returned on purpose: --no-wait): adopt it and finish the health wait
        // (with --no-wait ourselves, nobody waits: it stays without an owner).
        if (s.opts.wait)
            store.prepare("UPDATE servers SET owner_pid=?, owner_start_ticks=? WHERE name=?")
                .bind(1, s.me.pid)
                .bind(2, static_cast<std::int64_t>(s.me.start_ticks))
                .bind(3, r.name)
                .run();
        else
            store.prepare("UPDATE servers SET owner_pid=NULL, owner_start_ticks=NULL WHERE name=?").bind(1, r.name).run();
        store.add_event(r.name, "adopted",
                        fmt::format("pid {}{}", r.server.pid, owner.pid ? " (its llmctl died)" : " (started with --no-wait)"));
        use_as_exec(s, store, r.instance, false);
        adopt_exec_users(store, r.instance);
        return Decision{Found::adopted, r, owner.pid > 0};
    }
    if (r.status != "failed" && !server_processes(server_alive ? r.server : Identity{}, r.instance).empty())
        return Decision{Found::dead_stop, r}; // a stop whose llmctl died, or a dead server's children
    record_unknown_exit(store, r);            // a no-op when its monitor recorded the exit
    store.prepare("DELETE FROM servers WHERE name=? AND instance=?").bind(1, r.name).bind(2, r.instance).run();
    store.add_event(r.name, "cleared",
                    r.status == "admitting" ? fmt::format("status admitting: its start (pid {}) is gone", owner.pid)
                                            : fmt::format("status {}: pid {} is gone", r.status, r.server.pid));
    return std::nullopt;
}

// --- memory pools -----------------------------------------------------------------------------

std::string memory_wait_message(const Starting& s, const std::string& why) {
    return fmt::format("{} needs {} in {} ({}): {}; waiting…", s.model.name, format_memory(s.need.bytes), s.pool->name,
                       format_memory(s.budget), why);
}

const char* const k_mark_evicted = "UPDATE servers SET status='stopping', owner_pid=?, owner_start_ticks=? WHERE name=? AND instance=?";

// Our admitting row: the name and the memory claimed while the victims exit (no process yet).
ServerRow admitting_row(const Starting& s) {
    ServerRow row;
    row.name = s.model.name;
    row.instance = new_instance_id();
    row.status = "admitting";
    row.host = s.model.host;
    row.log_path = log_path(s.dir, s.model.name);
    row.owner_pid = s.me.pid;
    row.owner_start_ticks = static_cast<std::int64_t>(s.me.start_ticks);
    row.started_at = row.last_used = now_ms();
    row.config_hash = config_hash(s.model);
    row.spec_json = model_spec_json(s.model);
    row.max_concurrent = std::max(1, s.model.max_concurrent);
    row.pool = s.pool->name;
    row.memory = static_cast<std::int64_t>(s.need.bytes);
    row.memory_source = s.need.source;
    row.pin = s.model.pin;
    return row;
}

// Under the lock, for a model in a pool with no row of its name: nullopt when it fits (spawn now);
// else the victims to stop first (our `admitting` row claims the name and the memory meanwhile),
// or our place in the pool's queue.
std::optional<Decision> admit(Starting& s, Store& store) {
    const std::string& pool = s.pool->name;
    s.need = with_measured(store, s.model, s.expected);
    AdmissionQueue::reclaim_dead(store, pool);
    const std::int64_t mine = AdmissionQueue::place_of(store, s.model.name, s.me);
    const std::int64_t head = AdmissionQueue::head(store, pool);
    AdmissionPlan plan;
    const bool our_turn = std::exchange(s.evicted, false); // the memory our victims freed is ours
    if (head && head != mine && !our_turn) {
        const int ahead =
            mine ? AdmissionQueue::ahead_of(store, pool, mine) : static_cast<int>(AdmissionQueue::ahead_of(store, pool, INT64_MAX));
        plan.kind = AdmissionPlan::Kind::wait;
        plan.holders = fmt::format("{} start{} ahead of it in the queue", ahead, ahead == 1 ? " is" : "s are");
    } else {
        PoolState state = load_pool(store, pool, s.budget, s.opts.config, s.alive);
        // A server left stopping by a start or stop that died holds memory nobody frees: finish
        // that stop first (as for a row of our own name), then decide again.
        for (const auto& h : state.holders)
            if (h.row.status == "stopping" && !owner_alive(h.row)) return Decision{Found::dead_stop, h.row};
        plan = plan_admission(state, s.need.bytes);
    }
    if (s.opts.keep_warm && plan.kind != AdmissionPlan::Kind::fits) { // keep warm never evicts nor queues
        if (mine) AdmissionQueue::leave(store, s.model.name, s.me);
        throw Error(Exit::interrupted, fmt::format("{} does not fit pool {} without evicting{}", s.model.name, pool,
                                                   plan.holders.empty() ? "" : ": " + plan.holders));
    }
    if (plan.kind == AdmissionPlan::Kind::wait) {
        if (!mine) AdmissionQueue::join(store, pool, s.model.name, s.need.bytes, s.me);
        s.in_queue = true;
        return Decision{Found::queued, {}, false, {}, plan.holders.empty() ? "the pool holds nothing it can evict" : plan.holders};
    }
    if (mine) AdmissionQueue::leave(store, s.model.name, s.me);
    if (plan.kind == AdmissionPlan::Kind::fits) return std::nullopt;
    ServerRow row = admitting_row(s);
    insert_server(store, row);
    std::vector<std::string> names;
    for (const auto& v : plan.victims) {
        store.prepare(k_mark_evicted)
            .bind(1, s.me.pid)
            .bind(2, static_cast<std::int64_t>(s.me.start_ticks))
            .bind(3, v.name)
            .bind(4, v.instance)
            .run();
        store.add_event(v.name, "evicted",
                        fmt::format("to fit {} ({}) in pool {} (pid {}, {}, least recently used)", s.model.name,
                                    format_memory(s.need.bytes), pool, v.server.pid,
                                    format_memory(static_cast<std::uint64_t>(v.memory.value_or(0)))));
        names.push_back(v.name);
    }
    store.add_event(s.model.name, "admitting",
                    fmt::format("needs {} in pool {}: evicting {}", format_memory(s.need.bytes), pool, fmt::join(names, ", ")));
    return Decision{Found::admitting, row, false, plan.victims};
}

// Before the lock: looks at the processes of the pool (see Liveness), so that the decision under
// the lock reads /proc only for what changed meanwhile.
void look_at_pool(Starting& s) {
    s.alive = Liveness{};
    try {
        read_before_deciding(s.dir, [&](Store& store) {
            // What the decision reads, and the statements of what it may write, once now.
            load_pool(store, s.pool->name, s.budget, s.opts.config, s.alive);
            find_server(store, s.model.name);
            with_measured(store, s.model, s.expected);
            AdmissionQueue::reclaim_dead(store, s.pool->name, true);
            AdmissionQueue::place_of(store, s.model.name, s.me);
            AdmissionQueue::head(store, s.pool->name);
            warm_server_insert(store);
            store.prepare(k_mark_evicted);
            store.warm_event_insert();
        });
    } catch (const Error&) {
        // A damaged file is reported by the decision itself.
    }
}

// A policy restart decides only while its `restarting` row (or its own admitting one) is there:
// a stop or a user's start that took it calls the restart off. The restarting row is taken
// out of the way of the decision and returned (to put back if the decision is to wait).
std::optional<ServerRow> claim_restart(Starting& s, Store& store) {
    auto row = find_server(store, s.model.name);
    if (!row || owner_of(*row) != s.me || (row->status != "restarting" && row->status != "admitting"))
        throw Error(Exit::interrupted,
                    fmt::format("the restart of {} was called off: {}", s.model.name,
                                row ? fmt::format("it is {} by pid {}", row->status, owner_of(*row).pid) : std::string("it was stopped")));
    if (row->status == "admitting") return std::nullopt;
    store.prepare("DELETE FROM servers WHERE name=? AND instance=?").bind(1, row->name).bind(2, row->instance).run();
    return row;
}

Decision decide(Starting& s) {
    if (s.pool) look_at_pool(s);
    auto locked = open_locked(s.dir);
    Transaction tx(locked.store);
    std::optional<ServerRow> restarting;
    if (s.opts.policy_restart) restarting = claim_restart(s, locked.store);
    if (restarting) s.restarted_instance = restarting->instance;
    if (s.opts.keep_warm && is_held(locked.store, s.model.name))
        throw Error(Exit::interrupted, fmt::format("{} is held down by a stop", s.model.name),
                    fmt::format("llmctl start {} lets it go", s.model.name));
    if (auto existing = find_server(locked.store, s.model.name)) {
        if (auto d = judge_existing(s, locked.store, *existing)) {
            // Running now, or another start's: our place in the queue (if any) is not needed.
            if (s.in_queue) AdmissionQueue::leave(locked.store, s.model.name, s.me);
            tx.commit();
            s.in_queue = s.admitting = false;
            return *d;
        }
    }
    if (s.pool)
        if (auto d = admit(s, locked.store)) {
            if (restarting && d->found == Found::queued) insert_server(locked.store, *restarting); // still ours while it waits
            tx.commit();
            if (d->found == Found::admitting) s.in_queue = false, s.admitting = true;
            return *d;
        }
    Decision spawned{Found::spawned, spawn_and_commit(s, locked, tx)};
    s.in_queue = s.admitting = false; // committed with the spawn
    return spawned;
}

// Our admission's victims, least recently used first: each is stopped as a stop does it (no drain:
// nothing used it, and no chat gets a slot on a stopping server), then we decide again.
void evict(Starting& s, const std::vector<ServerRow>& victims) {
    for (const auto& v : victims) {
        const ModelConfig* vm = s.opts.config ? s.opts.config->find(v.name) : nullptr;
        s.note(fmt::format("evicting {} ({}, least recently used) to fit {} in pool {}", v.name,
                           format_memory(static_cast<std::uint64_t>(v.memory.value_or(0))), s.model.name, s.pool->name));
        terminate_server(is_alive(v.server) ? v.server : Identity{}, v.instance, vm ? vm->stop_timeout : s.model.stop_timeout);
        std::string unrecorded = record_stopped(s.dir, v, "stopped", fmt::format("evicted to fit {}", s.model.name));
        if (!unrecorded.empty()) s.note(fmt::format("{} stopped, but the state file could not record it: {}", v.name, unrecorded));
    }
}

// Lets go of our place in the pool's queue and our admitting row (a start that gives up), if the
// state file lets us.
void leave_memory_queue(const Starting& s) {
    try {
        auto locked = open_locked(s.dir);
        Transaction tx(locked.store);
        AdmissionQueue::leave(locked.store, s.model.name, s.me);
        locked.store.prepare("DELETE FROM servers WHERE name=? AND status='admitting' AND owner_pid=? AND owner_start_ticks=?")
            .bind(1, s.model.name)
            .bind(2, s.me.pid)
            .bind(3, static_cast<std::int64_t>(s.me.start_ticks))
            .run();
        tx.commit();
    } catch (const Error&) {
        // Both go with our process: the next admission in the pool, a start of the name or reap
        // clears them.
    }
}

// However a start ends (an error, a cancel, a failed spawn), it lets go of what it holds.
struct LeaveQueueAtEnd {
    Starting& s;
    ~LeaveQueueAtEnd() {
        if (s.in_queue || s.admitting) leave_memory_queue(s);
    }
};

// Our place in the pool's queue: says who holds the memory (again when that changes), and waits
// a little before deciding again; past the deadline, gives up.
void wait_for_memory(Starting& s, const std::string& why) {
    const std::string message = memory_wait_message(s, why);
    if (message != s.memory_message) s.note(message);
    s.memory_message = message;
    if (!s.memory_deadline) {
        Millis limit = s.opts.admission_timeout.value_or(s.opts.timeout.value_or(s.model.startup_timeout));
        s.memory_deadline = limit.count() > 0 ? clock::now() + limit : clock::time_point::max();
        s.memory_wait_limit = limit;
    }
    s.check_cancelled();
    if (clock::now() >= *s.memory_deadline)
        throw Error(
            Exit::timeout,
            fmt::format("{} waited {} for memory in pool {}: {}", s.model.name, format_duration(s.memory_wait_limit), s.pool->name, why),
            "stop a model of the pool (llmctl ps shows them), give the pool more memory, or wait longer (--timeout, "
            "queue_timeout)");
    s.waited(log_path(s.dir, s.model.name));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

// Another invocation is starting or stopping the server: poll its row without the lock (a WAL
// read never blocks the writer) until it settles or its owner dies.
void wait_for_other_start(Starting& s, const ServerRow& r) {
    Identity owner = owner_of(r);
    if (!s.announced) s.detail(fmt::format("{} is {} (by pid {}); waiting", s.model.name, r.status, owner.pid));
    s.announced = true;
    for (auto backoff = std::chrono::milliseconds(5);; backoff = std::min(backoff * 2, std::chrono::milliseconds(100))) {
        s.check_cancelled();
        std::this_thread::sleep_for(backoff);
        s.waited(r.log_path);
        if (!is_alive(owner)) return;
        auto reader = Store::open_read(state_db_path(s.dir));
        if (!reader) return;
        auto now_row = find_server(*reader, s.model.name);
        if (!now_row || now_row->status != r.status || now_row->instance != r.instance) return;
    }
}

// A stop whose llmctl died halfway (or the children of a server that died) is finished as a stop
// is: drain, SIGTERM, SIGKILL after stop_timeout, through the proven identities.
void finish_dead_stop(Starting& s, const ServerRow& r) {
    bool server_alive = is_alive(r.server);
    s.note(server_alive
               ? fmt::format("{} (pid {}) was being stopped by an llmctl that died; finishing that stop first", r.name, r.server.pid)
               : fmt::format("{}: its server (pid {}) is gone but processes of it remain; stopping them first", r.name, r.server.pid));
    auto res = stop_server(s.dir, r.name, s.model.stop_timeout, s.model.drain_timeout, s.opts.progress, "stopped",
                           server_alive ? "finished the stop of an llmctl that died" : "stopped the leftovers of a dead server",
                           [&](Store&, const ServerRow& now_row) {
                               Identity o = owner_of(now_row);
                               return now_row.instance == r.instance && !(o.pid > 0 && is_alive(o) && o != s.me);
                           });
    if (!res.unrecorded.empty()) s.note(fmt::format("{} stopped, but the state file could not record it: {}", r.name, res.unrecorded));
}

// --- health -----------------------------------------------------------------------------------

enum class Health { ready, preempted, port_lost };

// How our server exited, as its monitor recorded it ("exited with code 3", "killed by SIGSEGV"),
// or nullopt while it runs. The monitor records within milliseconds of the exit (it waits for no
// lock holder but the state lock's): up to a second is waited for its record, then "exited".
std::optional<std::string> server_exit_cause(const std::string& state_dir, const ServerRow& row) {
    if (is_alive(row.server)) return std::nullopt;
    const auto give_up = clock::now() + std::chrono::seconds(1);
    auto recorded = [&]() -> std::optional<std::string> {
        if (auto reader = Store::open_read(state_db_path(state_dir)))
            if (auto e = exit_of(*reader, row.instance); e && e->known) return e->cause;
        return std::nullopt;
    };
    for (bool monitor_alive = row.monitor.pid > 0; monitor_alive;) {
        monitor_alive = is_alive(row.monitor) && clock::now() < give_up; // (its record is read once more after it ended)
        if (auto cause = recorded()) return cause;
        if (monitor_alive) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return std::string("exited");
}

// True when our starting row is gone or being stopped: someone stopped the server on purpose.
bool taken_over(const std::string& state_dir, const std::string& name, const std::string& instance) {
    auto reader = Store::open_read(state_db_path(state_dir));
    if (!reader) return true;
    auto r = find_server(*reader, name);
    return !r || r->instance != instance || r->status == "stopping";
}

std::vector<pid_t> pids_of(const ServerRow& row) {
    std::vector<pid_t> pids;
    for (auto& p : server_processes(row.server, row.instance)) pids.push_back(p.pid);
    return pids;
}

// The log of this run only: the lines after its start marker (the last `n` of them).
std::string this_run_log(const ServerRow& row, std::size_t n) {
    std::string tail = read_tail(row.log_path, 64 * 1024).value_or("");
    auto at = tail.rfind(start_marker(row.name, row.server.pid));
    if (at != std::string::npos) {
        auto nl = tail.find('\n', at);
        tail = nl == std::string::npos ? std::string() : tail.substr(nl + 1);
    }
    std::string lines = last_lines(tail, n);
    return lines.empty() ? "  (the server wrote nothing)\n" : lines;
}

// Kills what runs of the server, marks the row failed (if the disk allows) and throws.
[[noreturn]] void fail_start(Starting& s, const ServerRow& row, Exit code, const std::string& why, const std::string& hint) {
    signal_all(server_processes(is_alive(row.server) ? row.server : Identity{}, row.instance), SIGKILL);
    std::string unrecorded;
    try {
        auto locked = open_locked(s.dir);
        auto& store = locked.store;
        Transaction tx(store);
        store.prepare("UPDATE servers SET status='failed', error=? WHERE name=? AND instance=?")
            .bind(1, why)
            .bind(2, row.name)
            .bind(3, row.instance)
            .run();
        store.add_event(row.name, "failed", why);
        tx.commit();
    } catch (const StateWriteError& e) {
        unrecorded = fmt::format("\n(the state file could not record the failure: {})", e.what());
    }
    throw Error(code, fmt::format("{}; last lines of {} (this run):\n{}{}", why, row.log_path, this_run_log(row, 20), unrecorded), hint);
}

// What to do about a server that did not get ready, by what the last probe saw.
std::string not_ready_hint(const Starting& s, const Probe& last, bool listening, int port) {
    if (!listening)
        return fmt::format("it never listened on port {}: does its command pass {{port}} (and {{host}})? If it loads first and "
                           "opens the port later, raise startup_timeout (or --timeout)",
                           port);
    if (last.http == 404 || last.http == 405)
        return fmt::format("it answers, but not on {}: set health to a path it serves (e.g. \"/\"), or \"tcp\" to wait for the port only",
                           s.model.health);
    return "raise startup_timeout (or --timeout) if the model needs longer to load";
}

// Waits until the server answers its health check from a socket of its own.
Health wait_healthy(Starting& s, const ServerRow& row) {
    const int port = static_cast<int>(row.port.value_or(0));
    Millis startup = s.opts.timeout.value_or(s.model.startup_timeout);
    std::optional<clock::time_point> deadline;
    if (startup.count() > 0) deadline = clock::now() + startup; // 0: no limit
    // Polled from 2 ms, doubling to 200 ms: a server ready in a few milliseconds is seen ready in
    // a few more (the first poll at 25 ms made every start of a quick server take 55 ms).
    auto backoff = std::chrono::milliseconds(2);
    Probe last;
    bool listening = false;
    for (;;) {
        s.check_cancelled();
        auto listeners = port_listeners(row.host, port, pids_of(row));
        if (auto ex = server_exit_cause(s.dir, row)) {
            if (taken_over(s.dir, row.name, row.instance)) return Health::preempted;   // a stop that came after us
            if (port_listeners(row.host, port, {}).stranger) return Health::port_lost; // someone took the port first
            fail_start(s, row, Exit::server, fmt::format("server {} {} during startup", row.name, *ex),
                       fmt::format("see the whole log: llmctl logs {}", row.name));
        }
        // A stranger on our port (SO_REUSEPORT lets two share it) may answer our probes and would
        // take part of the traffic: never call that ready.
        if (listeners.stranger) return Health::port_lost;
        listening = listening || listeners.ours;
        if (listeners.ours) {
            last = probe_ready(row.host, port, s.model.health, Millis(1000));
            if (last.ok) {
                auto after = port_listeners(row.host, port, pids_of(row)); // the answer came from a socket ours alone
                if (after.stranger) return Health::port_lost;
                if (after.ours) return Health::ready;
            }
        }
        if (deadline && clock::now() >= *deadline) {
            std::string seen = listeners.ours ? last.seen : fmt::format("nothing listens on {}", row.url().substr(7));
            fail_start(s, row, Exit::timeout, fmt::format("server {} not healthy after {}: {}", row.name, format_duration(startup), seen),
                       not_ready_hint(s, last, listening, port));
        }
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
        s.waited(row.log_path);
    }
}

// A stranger took the port between our pick and the server's bind (or shares it): kill ours,
// and pick again with that port excluded, at most k_max_port_attempts times.
void retry_after_port_lost(Starting& s, const ServerRow& row) {
    auto procs = server_processes(is_alive(row.server) ? row.server : Identity{}, row.instance);
    signal_all(procs, SIGKILL);
    wait_gone(procs, clock::now() + std::chrono::seconds(1));
    const int port = static_cast<int>(row.port.value_or(0));
    bool fixed = s.opts.port || s.model.port;
    auto holder = listening_pid(row.host, port);
    std::string who = holder ? pid_and_name(*holder) : "another process";
    std::string why = fmt::format("port {} was taken by {} while {} started", port, who, row.name);
    if (fixed || ++s.port_attempts >= k_max_port_attempts)
        fail_start(s, row, Exit::server, why + (fixed ? "" : fmt::format(" ({} attempts)", s.port_attempts)),
                   fixed ? "free the port, or remove \"port\" to pick one from port_range"
                         : "something keeps binding ports in port_range: pick another range");
    s.note(why + "; retrying on another port");
    s.lost_ports.insert(port);
    auto locked = open_locked(s.dir);
    Transaction tx(locked.store);
    locked.store.prepare("DELETE FROM servers WHERE name=? AND instance=?").bind(1, row.name).bind(2, row.instance).run();
    locked.store.add_event(row.name, "port_lost", why);
    tx.commit();
}

// The server is ready: `running`, unless a stop took the row over meanwhile (false). A server
// whose readiness cannot be recorded (a full disk) is stopped, never left running unrecorded.
bool mark_running(Starting& s, const ServerRow& row) {
    fault_point("ready");
    try {
        auto locked = open_locked(s.dir);
        auto& store = locked.store;
        Transaction tx(store);
        std::int64_t now = now_ms();
        store.prepare("UPDATE servers SET status='running', ready_at=?, last_used=? WHERE name=? AND instance=? AND status='starting'")
            .bind(1, now)
            .bind(2, now)
            .bind(3, row.name)
            .bind(4, row.instance)
            .run();
        if (store.changes() == 0) return false;
        store.add_event(row.name, "ready", fmt::format("pid {} port {}", row.server.pid, row.port.value_or(0)));
        tx.commit();
        return true;
    } catch (const StateWriteError& e) {
        terminate_server(row.server, row.instance, s.model.stop_timeout);
        throw StateWriteError(fmt::format("{} became ready, but the state file could not record it ({}); it was stopped so that "
                                          "no server runs unrecorded",
                                          row.name, e.what()),
                              e.hint());
    }
}

// The memory a ready server really takes, counted from now on when more than expected.
void measure(const Starting& s, const ServerRow& row) {
    try {
        if (auto bytes = record_measured_memory(s.dir, row, *s.pool); bytes && *bytes > s.need.bytes)
            s.detail(fmt::format("{} measures {} ({} {} expected); counted from now on", row.name, format_memory(*bytes),
                                 format_memory(s.need.bytes), s.need.source));
    } catch (const Error&) {
        // A full disk: the expected footprint keeps counting.
    }
}

// A log above log_max_size is rotated before a new server appends to it (per-log lock only).
void rotate_before_start(const Starting& s) {
    try {
        std::string path = log_path(s.dir, s.model.name);
        auto res = rotate_log(path, s.model.log_max_size, s.model.log_keep);
        if (res.lost_kept_output()) s.note(describe_rotation(res, path, false)); // a full disk: say what went
    } catch (const Error& e) {
        s.note(fmt::format("could not rotate the log of {}: {}", s.model.name, e.what()));
    }
}

} // namespace

void kill_orphans_of(const std::string& state_dir, const std::string& name, const std::string& ours) {
    // Servers of this name that run without a row (their row deleted by hand or lost to damage:
    // a dying start cannot leave one, thanks to the spawn gate) are orphans: kill them rather than
    // let two run (reap does the same for every name). Called by the start that spawned, after its
    // commit: the /proc scan costs time in proportion to every process on the machine, so it runs
    // outside the lock and in one start per spawn. The lock is taken only for a candidate.
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
        if (signal_identity(m.id, SIGKILL) == SignalResult::sent) store.add_event(name, "orphan_killed", fmt::format("pid {}", m.id.pid));
    }
    tx.commit();
}

StartResult start_server(const std::string& state_dir, const ModelConfig& model, const StartOptions& opts) {
    if (model.external())
        throw Error(Exit::usage, fmt::format("model \"{}\" is external ({}): llmctl does not start it", model.name, model.url));
    ensure_state_dir(state_dir);
    recover_lost_state(state_dir);
    Starting s{state_dir, model, opts};
    if (!opts.exec_user) // an exec registers as a user under the lock
        if (auto r = running_now(s)) return *r;
    rotate_before_start(s);
    if (opts.config) s.pool = opts.config->pool_of(model);
    if (s.pool) {
        s.budget = pool_budget(*s.pool);
        std::vector<std::string> argv;
        for (const auto& a : model.command) argv.push_back(expand_placeholders(a, model.host, 0, model.name));
        s.expected = expected_footprint(model, argv, s.budget, s.pool->name);
    }
    LeaveQueueAtEnd leave_queue{s};
    for (;;) {
        Decision d = decide(s);
        switch (d.found) {
        case Found::running: return result_of(d.row, true, false);
        case Found::other_start: wait_for_other_start(s, d.row); continue;
        case Found::dead_stop: finish_dead_stop(s, d.row); continue;
        case Found::admitting:
            evict(s, d.victims);
            s.evicted = true;
            continue;
        case Found::queued: wait_for_memory(s, d.why); continue;
        case Found::adopted:
        case Found::spawned: break;
        }
        StartResult res = result_of(d.row, false, d.owner_died);
        if (!opts.wait) return res;
        switch (wait_healthy(s, d.row)) {
        case Health::preempted: s.preempted(); continue;
        case Health::port_lost: retry_after_port_lost(s, d.row); continue;
        case Health::ready: break;
        }
        if (!mark_running(s, d.row)) {
            s.preempted(); // a stop took the row over while we waited for health: decide again
            continue;
        }
        if (s.pool) measure(s, d.row);
        return res;
    }
}

} // namespace llmctl
