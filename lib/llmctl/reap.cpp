// reap: one short hold of the state lock to read (take_snapshot), decide (decide, reap_plan.cpp:
// a pure function) and record (record_plan); then the actions that give processes time (act_*),
// outside the lock, each re-checked under the lock by the stop it runs.

#include "llmctl/reap.hpp"

#include "llmctl/admission.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/exec_users.hpp"
#include "llmctl/exits.hpp"
#include "llmctl/files.hpp"
#include "llmctl/gateway_registry.hpp"
#include "llmctl/health.hpp"
#include "llmctl/in_use.hpp"
#include "llmctl/keep_warm.hpp"
#include "llmctl/lock.hpp"
#include "llmctl/logfile.hpp"
#include "llmctl/lookup.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/reap_plan.hpp"
#include "llmctl/recovery.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/slots.hpp"
#include "llmctl/signal.hpp"
#include "llmctl/store.hpp"
#include "llmctl/supervisor.hpp"

#include <algorithm>
#include <csignal>
#include <fmt/format.h>
#include <set>
#include <sys/stat.h>
#include <thread>

namespace llmctl {

namespace {

// The settings reap applies to a server: its config entry, else the spec recorded with it (an
// ad-hoc server), else [defaults].
ModelConfig model_for(const Config& cfg, const std::string& name, const std::string& spec_json = "") {
    if (auto* m = cfg.find(name)) return *m;
    if (auto m = model_from_spec(cfg.defaults, name, spec_json)) return *m;
    return model_from_defaults(cfg.defaults, name);
}

// Under the lock, before reap acts on what it decided earlier: the row is still the same
// server, in the same state, with no live owner (a start may have adopted it meanwhile).
bool same_unowned(const ServerRow& now_row, const ServerRow& then, const char* status) {
    return now_row.instance == then.instance && now_row.server == then.server && now_row.status == status && !owner_alive(now_row);
}

struct Reaper {
    const std::string& dir;
    const Config& cfg;
    const ReapOptions& opts;
    ReapReport& report;
    std::int64_t now = now_ms();
    bool plan_recorded = true; // false: the plan's transaction could not be written (a full disk)

    void did(const std::string& kind, const std::string& name, pid_t pid, const std::string& detail) {
        report.actions.push_back({kind, name, pid, detail});
    }
    // A preload model is kept warm: never idle, whatever --idle-timeout says.
    Millis idle_limit(const ServerRow& r) const {
        if (opts.config_ok && cfg.find(r.name) && cfg.find(r.name)->preload) return Millis(0);
        if (opts.idle_timeout) return *opts.idle_timeout;
        return opts.config_ok ? model_for(cfg, r.name, r.spec_json).idle_timeout : Millis(0);
    }
    void unrecorded(const StopResult& res, const std::string& name) {
        if (!res.unrecorded.empty())
            report.warnings.push_back(fmt::format("{} was stopped, but the state file could not record it: {}", name, res.unrecorded));
    }
};

// What reap reads under the lock: rows, leases and marked processes, with whether each process
// lives (its proven identity) and whether a running server with an idle limit is in use.
ReapSnapshot take_snapshot(const Reaper& rp, Store* store) {
    ReapSnapshot s;
    s.now = rp.now;
    if (store) {
        for (auto& row : load_servers(*store)) {
            ReapRow r{row};
            r.server_alive = is_alive(row.server);
            r.owner_alive = owner_alive(row);
            r.monitor_alive = row.monitor.pid > 0 && is_alive(row.monitor);
            if (row.status == "running") r.idle_limit = rp.idle_limit(row);
            if (r.idle_limit.count() > 0) r.in_use = server_use(*store, row).any();
            s.rows.push_back(std::move(r));
        }
        auto q = store->prepare("SELECT id, model, owner_pid, owner_start_ticks, owner_boot_id FROM leases ORDER BY id");
        while (q.step()) {
            Identity owner = identity_at(q, 2);
            s.leases.push_back({q.i64(0), q.str(1), owner.pid, is_alive(owner)});
        }
    }
    s.marked = scan_marked(rp.dir);
    return s;
}

// exec users whose exec died: their rows go (exec_users hands a duty to stop the server to a
// live exec of it); the servers whose duty found no heir are returned, to be stopped outside
// the lock. With --dry-run, only what would be reclaimed, in `reports`.
std::vector<ServerRow> reclaim_dead_execs(const Reaper& rp, Store& store, const ReapSnapshot& s, std::vector<ReapAction>& reports) {
    std::vector<ServerRow> to_stop;
    if (rp.opts.dry_run) {
        auto q = store.prepare("SELECT model, owner_pid, owner_start_ticks, owner_boot_id, stops_server FROM exec_users");
        while (q.step())
            if (!is_alive(identity_at(q, 1)))
                reports.push_back({"exec_reclaimed", q.str(0), static_cast<pid_t>(q.i64(1)),
                                   q.i64(4) ? "its exec is gone; it had started the server" : "its exec is gone"});
        return to_stop;
    }
    for (auto& duty : reclaim_dead_exec_users(store))
        for (const auto& r : s.rows)
            if (r.row.name == duty.model && r.row.instance == duty.instance && r.row.status != "failed") to_stop.push_back(r.row);
    return to_stop;
}

// The part of the plan written in the snapshot's transaction (nothing with --dry-run), reported
// in the order reap has always reported it.
void record_plan(Reaper& rp, Store* store, const ReapPlan& plan, const std::vector<ReapAction>& exec_reports) {
    bool write = store && !rp.opts.dry_run;
    for (const auto& r : plan.dead) {
        const bool admitting = r.status == "admitting"; // no process yet: its start is what died
        std::string why = admitting                  ? fmt::format("its start (pid {}) died while it waited for memory", owner_of(r).pid)
                          : r.status == "restarting" ? fmt::format("its restart (pid {}) died before it started it again", owner_of(r).pid)
                                                     : fmt::format("{} server's process is gone", r.status);
        const pid_t pid = admitting ? owner_of(r).pid : r.server.pid;
        rp.did("reaped", r.name, pid, why);
        if (!write) continue;
        record_unknown_exit(*store, r);
        store->prepare("DELETE FROM servers WHERE name=? AND instance=?").bind(1, r.name).bind(2, r.instance).run();
        store->add_event(r.name, "reaped", admitting ? why : fmt::format("pid {}: {}", pid, why));
    }
    for (const auto& l : plan.dead_leases) {
        std::string why = fmt::format("lease {} of {}: owner pid {} is gone", l.id, l.model, l.owner_pid);
        rp.did("lease_reclaimed", l.model, l.owner_pid, why);
        if (write) reclaim_lease(*store, l.id, why);
    }
    for (const auto& a : exec_reports) rp.report.actions.push_back(a);
    for (const auto& [r, m] : plan.repairs) {
        std::string why = fmt::format("row instance {} host {} port {} repaired to the server's markers {} {} {}", r.instance, r.host,
                                      r.port.value_or(0), m.instance, m.host, m.port);
        rp.did("repaired", r.name, m.id.pid, why);
        if (!write) continue;
        store->prepare("UPDATE servers SET instance=?, host=?, port=? WHERE name=? AND instance=?")
            .bind(1, m.instance)
            .bind(2, m.host)
            .bind(3, m.port)
            .bind(4, r.name)
            .bind(5, r.instance)
            .run();
        store->add_event(r.name, "repaired", why);
    }
}

// Places in the memory pools' queues whose start is gone (kill -9): dropped (listed with --dry-run).
void clear_dead_admissions(Reaper& rp, Store& store) {
    for (const auto& p : AdmissionQueue::reclaim_dead(store, "", rp.opts.dry_run))
        rp.did("admission_cleared", p.model, p.owner,
               fmt::format("its start (pid {}) waiting for memory in pool {} is gone", p.owner, p.pool));
}

// Rows of gateways (`llmctl serve`) whose process is gone (kill -9): deleted (listed with --dry-run).
void clear_dead_gateways(Reaper& rp, Store& store) {
    auto dead = rp.opts.dry_run ? dead_gateways(store) : delete_dead_gateways(store);
    for (const auto& g : dead) rp.did("gateway_cleared", "", g.owner.pid, fmt::format("the gateway on {} is gone", g.url));
}

// Reads, decides and records in one transaction under the lock (a snapshot without it for
// --dry-run). A write that fails (a full disk) is a warning: the plan is carried out all the same.
ReapPlan plan_under_lock(Reaper& rp) {
    std::optional<LockedStore> locked;
    std::optional<Store> reader;
    Store* store = nullptr;
    if (rp.opts.dry_run) {
        reader = Store::open_read(state_db_path(rp.dir));
        if (reader) store = &*reader;
    } else {
        locked.emplace(open_locked(rp.dir));
        store = &locked->store;
    }
    std::optional<Transaction> tx;
    if (store) tx.emplace(*store, rp.opts.dry_run ? Transaction::Kind::deferred : Transaction::Kind::exclusive);
    ReapSnapshot snapshot = take_snapshot(rp, store);
    std::vector<ReapAction> exec_reports;
    if (store) snapshot.duty_stops = reclaim_dead_execs(rp, *store, snapshot, exec_reports);
    ReapPlan plan = decide(snapshot);
    record_plan(rp, store, plan, exec_reports);
    if (store) clear_dead_gateways(rp, *store);
    if (store) clear_dead_admissions(rp, *store);
    if (tx && !rp.opts.dry_run) {
        try {
            tx->commit();
        } catch (const StateWriteError& e) {
            rp.plan_recorded = false;
            rp.report.warnings.push_back(fmt::format("could not record what reap found ({}); it acts on it all the same, "
                                                     "and a later reap records it",
                                                     e.what()));
        }
    }
    return plan;
}

// Orphans: TERM, the stop timeout, KILL what is left.
void act_orphans(Reaper& rp, const std::vector<MarkedProcess>& orphans) {
    if (orphans.empty()) return;
    for (auto& o : orphans) rp.did("orphan_killed", o.name, o.id.pid, fmt::format("instance {} has no live row", o.instance));
    if (rp.opts.dry_run) return;
    Millis grace = rp.cfg.defaults.stop_timeout;
    for (auto& o : orphans) grace = std::max(grace, model_for(rp.cfg, o.name).stop_timeout);
    std::vector<Identity> ids;
    for (auto& o : orphans) ids.push_back(o.id);
    terminate_then_kill(ids, grace);
    try {
        auto locked = open_locked(rp.dir);
        Transaction tx(locked.store);
        for (auto& o : orphans) locked.store.add_event(o.name, "orphan_killed", fmt::format("pid {} instance {}", o.id.pid, o.instance));
        tx.commit();
    } catch (const StateWriteError&) {
        // the events only: the processes are gone, which is what mattered
    }
}

// `starting` rows whose owner died while the server lives: ready → adopt as running; past its
// startup timeout → stop; still loading → leave it (a start adopts it too).
void act_adopt(Reaper& rp, const ServerRow& r) {
    ModelConfig m = model_for(rp.cfg, r.name, r.spec_json);
    std::vector<pid_t> pids;
    for (auto& p : server_processes(r.server, r.instance)) pids.push_back(p.pid);
    int port = static_cast<int>(r.port.value_or(0));
    auto listeners = port ? port_listeners(r.host, port, pids) : PortListeners{};
    bool ready = listeners.ours && !listeners.stranger && probe_ready(r.host, port, m.health, Millis(1000)).ok;
    bool overdue = m.startup_timeout.count() > 0 && r.started_at && rp.now - *r.started_at > m.startup_timeout.count();
    if (ready) {
        rp.did("adopted", r.name, r.server.pid, "its start died; the server is healthy: now running");
        if (rp.opts.dry_run) return;
        auto locked = open_locked(rp.dir);
        auto& store = locked.store;
        Transaction tx(store);
        auto now_row = find_server(store, r.name);
        if (now_row && same_unowned(*now_row, r, "starting")) {
            std::int64_t t = now_ms();
            store
                .prepare("UPDATE servers SET status='running', ready_at=?, last_used=?, owner_pid=NULL, owner_start_ticks=NULL "
                         "WHERE name=? AND instance=?")
                .bind(1, t)
                .bind(2, t)
                .bind(3, r.name)
                .bind(4, r.instance)
                .run();
            store.add_event(r.name, "adopted", fmt::format("pid {} by reap", r.server.pid));
        }
        tx.commit();
    } else if (overdue) {
        rp.did("reaped", r.name, r.server.pid, "its start died and it is not healthy after startup_timeout");
        if (rp.opts.dry_run) return;
        rp.unrecorded(stop_server(rp.dir, r.name, m.stop_timeout, Millis(0), {}, "reaped", "start died, never healthy",
                                  [&](Store&, const ServerRow& now_row) { return same_unowned(now_row, r, "starting"); }),
                      r.name);
    }
}

// A stop whose llmctl died is finished as a stop is: drain, TERM, KILL after stop_timeout.
void act_finish_stop(Reaper& rp, const ServerRow& r) {
    rp.did("reaped", r.name, r.server.pid, "its stop died halfway: stop finished");
    if (rp.opts.dry_run) return;
    ModelConfig m = model_for(rp.cfg, r.name, r.spec_json);
    rp.unrecorded(stop_server(rp.dir, r.name, m.stop_timeout, m.drain_timeout, {}, "reaped", "stop died halfway",
                              [&](Store&, const ServerRow& now_row) { return same_unowned(now_row, r, "stopping"); }),
                  r.name);
}

// A server whose exec died with the duty to stop it: stopped, unless a live start took it over
// meanwhile (its owner changed) or it is no longer that instance.
void act_duty_stop(Reaper& rp, const ServerRow& r) {
    ModelConfig m = model_for(rp.cfg, r.name, r.spec_json);
    std::string why = "the llmctl exec that started it died";
    // Marked `stopping` by this reap in its transaction (so a reap killed now leaves a stop for the
    // next one to finish); a start that took the server over since owns it now. If that
    // transaction could not be written (a full disk), the row is as it was.
    Identity me = self_identity();
    auto res = stop_server(rp.dir, r.name, m.stop_timeout, m.drain_timeout, {}, "reaped", why, [&](Store&, const ServerRow& now_row) {
        if (now_row.instance != r.instance) return false;
        if (!rp.plan_recorded) return now_row.owner_pid == r.owner_pid && now_row.owner_start_ticks == r.owner_start_ticks;
        return now_row.status == "stopping" && now_row.owner_pid == me.pid &&
               now_row.owner_start_ticks == static_cast<std::int64_t>(me.start_ticks);
    });
    rp.unrecorded(res, r.name);
    if (res.stopped) rp.did("reaped", r.name, r.server.pid, why);
}

// A running server idle past its limit, with nobody using it (re-checked under the lock).
void act_idle_stop(Reaper& rp, const ServerRow& r) {
    Millis limit = rp.idle_limit(r);
    std::string why = fmt::format("idle for {} (idle_timeout {})", format_duration(Millis((rp.now - *r.last_used) / 1000 * 1000)),
                                  format_duration(limit));
    if (rp.opts.dry_run) return rp.did("reaped", r.name, r.server.pid, why);
    ModelConfig m = model_for(rp.cfg, r.name, r.spec_json);
    auto res = stop_server(rp.dir, r.name, m.stop_timeout, m.drain_timeout, {}, "reaped", why, [&](Store& store, const ServerRow& now_row) {
        return now_row.instance == r.instance && now_row.status == "running" && now_row.last_used &&
               now_ms() - *now_row.last_used > limit.count() && !server_use(store, now_row).any();
    });
    rp.unrecorded(res, r.name);
    if (res.stopped) rp.did("reaped", r.name, r.server.pid, why);
}

// Logs above log_max_size: rotated (per-log lock, never the state lock).
void act_rotate_logs(Reaper& rp) {
    for (const auto& name : logged_names(rp.dir)) {
        ModelConfig m = model_for(rp.cfg, name);
        std::string path = log_path(rp.dir, name);
        struct stat sb {};
        if (m.log_max_size == 0 || ::stat(path.c_str(), &sb) != 0 || static_cast<std::uint64_t>(sb.st_size) <= m.log_max_size) continue;
        std::string detail = fmt::format("{} is {} > log_max_size {}", path, format_size(static_cast<std::uint64_t>(sb.st_size)),
                                         format_size(m.log_max_size));
        if (!rp.opts.dry_run) {
            RotateResult res;
            try {
                res = rotate_log(path, m.log_max_size, m.log_keep);
            } catch (const Error& e) {
                rp.report.warnings.push_back(fmt::format("could not rotate {}: {}", path, e.what()));
                continue;
            }
            if (!res.rotated) continue;
            detail += "; " + describe_rotation(res, path, true);
            if (res.lost_kept_output()) rp.report.warnings.push_back(describe_rotation(res, path, true));
        }
        rp.did("rotated", name, 0, detail);
    }
}

// Keep warm: preload models that have no server are started (and waited for, so that the row
// is `running` when reap returns), when no stop holds them down and they fit their pool; one that
// cannot start is a warning.
void act_preload(Reaper& rp) {
    for (const auto& w : start_preloads(rp.dir, rp.cfg, WarmOptions{rp.opts.dry_run, true, rp.opts.cancelled})) {
        using enum WarmStart::Outcome;
        if (w.outcome == started || w.outcome == would_start) rp.did("preload", w.name, w.pid, w.why);
        if (w.outcome == failed) rp.report.warnings.push_back(fmt::format("preload of {} failed: {}", w.name, w.why));
    }
}

} // namespace

// A dead server's monitor records its exit within milliseconds (and may restart it): reap gives
// the monitors of dead rows up to 2 s to finish first, so that what it reports after a crash is
// what happened, not "nothing yet".
void let_monitors_finish(const std::string& state_dir) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (;;) {
        auto reader = Store::open_read(state_db_path(state_dir));
        if (!reader) return;
        bool waiting = false;
        for (const auto& r : load_servers(*reader))
            if (r.monitor.pid > 0 && r.status != "restarting" && !is_alive(r.server) && is_alive(r.monitor)) waiting = true;
        if (!waiting || std::chrono::steady_clock::now() >= until) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

ReapReport reap(const std::string& state_dir, const Config& cfg, const ReapOptions& opts) {
    ReapReport report;
    if (!check_state_dir(state_dir)) return report; // nothing ever ran here
    Reaper rp{state_dir, cfg, opts, report};
    if (!opts.config_ok)
        report.warnings.push_back(opts.idle_timeout
                                      ? "log rotation skipped (it needs the config's log_max_size)"
                                      : "idle stops and log rotation skipped (they need the config's idle_timeout and log_max_size)");
    if (!opts.dry_run) {
        try {
            for (auto& n : recover_lost_state(state_dir)) rp.did("rebuilt", n, 0, "row rebuilt from the server's markers");
        } catch (const StateWriteError& e) {
            report.warnings.push_back(fmt::format("the lost state file could not be rebuilt: {}", e.what()));
        }
    }
    try {
        let_monitors_finish(state_dir);
    } catch (const Error&) {
        // A damaged file is reported by the plan.
    }
    ReapPlan plan = plan_under_lock(rp);
    act_orphans(rp, plan.orphans);
    for (const auto& r : plan.adopt) act_adopt(rp, r);
    for (const auto& r : plan.finish_stop) act_finish_stop(rp, r);
    for (const auto& r : plan.duty_stops) act_duty_stop(rp, r);
    for (const auto& r : plan.idle) act_idle_stop(rp, r);
    if (opts.config_ok) act_rotate_logs(rp);
    if (opts.config_ok) act_preload(rp);
    if (!opts.dry_run && !Store::checkpoints_elsewhere()) {
        // Short invocations skip the checkpoint on close; reap empties the WAL (TRUNCATE: a
        // passive checkpoint would leave frames that every new connection reads again). Inside
        // `serve` its own checkpointer keeps the WAL short, without holding its lease decisions.
        try {
            if (auto store = Store::open_update(state_db_path(state_dir))) store->checkpoint_truncate(Millis{10'000});
        } catch (const Error&) {}
    }
    return report;
}

} // namespace llmctl
