// reap: one short hold of the state lock to read, decide and record (plan_under_lock), then the
// actions that give processes time (act_*), outside the lock, each re-checked under the lock by
// the stop it runs.

#include "llmctl/reap.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/exec_users.hpp"
#include "llmctl/files.hpp"
#include "llmctl/health.hpp"
#include "llmctl/in_use.hpp"
#include "llmctl/lock.hpp"
#include "llmctl/logfile.hpp"
#include "llmctl/lookup.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/recovery.hpp"
#include "llmctl/servers.hpp"
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

Identity owner_of(const ServerRow& r) {
    return Identity{static_cast<pid_t>(r.owner_pid.value_or(0)), static_cast<std::uint64_t>(r.owner_start_ticks.value_or(0)), boot_id()};
}

bool owner_alive(const ServerRow& r) {
    auto o = owner_of(r);
    return o.pid > 0 && is_alive(o);
}

// Under the lock, before reap acts on what it decided earlier: the row is still the same
// server, in the same state, with no live owner (a start may have adopted it meanwhile).
bool same_unowned(const ServerRow& now_row, const ServerRow& then, const char* status) {
    return now_row.instance == then.instance && now_row.server == then.server && now_row.status == status && !owner_alive(now_row);
}

// What reap decided under the lock and carries out outside it.
struct Plan {
    std::vector<ServerRow> adopt, finish_stop, idle;
    std::vector<ServerRow> duty_stops; // servers whose exec died with the duty to stop them, no heir
    std::vector<MarkedProcess> orphans;
};

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
    Millis idle_limit(const ServerRow& r) const {
        if (opts.idle_timeout) return *opts.idle_timeout;
        return opts.config_ok ? model_for(cfg, r.name, r.spec_json).idle_timeout : Millis(0);
    }
    void unrecorded(const StopResult& res, const std::string& name) {
        if (!res.unrecorded.empty())
            report.warnings.push_back(fmt::format("{} was stopped, but the state file could not record it: {}", name, res.unrecorded));
    }
};

// Rows whose server is gone (a running one, or one no live invocation owns): deleted. Returns the
// instances of the rows that stay.
std::set<std::string> clear_dead_rows(Reaper& rp, Store* store, const std::vector<ServerRow>& rows) {
    std::set<std::string> live;
    for (const auto& r : rows) {
        if (r.status == "failed") continue;
        if (!is_alive(r.server) && (r.status == "running" || !owner_alive(r))) {
            std::string why = fmt::format("{} server's process is gone", r.status);
            rp.did("reaped", r.name, r.server.pid, why);
            if (!rp.opts.dry_run) {
                store->prepare("DELETE FROM servers WHERE name=? AND instance=?").bind(1, r.name).bind(2, r.instance).run();
                store->add_event(r.name, "reaped", fmt::format("pid {}: {}", r.server.pid, why));
            }
            continue;
        }
        live.insert(r.instance);
    }
    return live;
}

// Chat leases whose client died: deleted (the slot is free again).
void reclaim_dead_leases(Reaper& rp, Store& store) {
    std::vector<std::pair<std::int64_t, std::string>> dead;
    auto q = store.prepare("SELECT id, model, owner_pid, owner_start_ticks, owner_boot_id FROM leases ORDER BY id");
    while (q.step()) {
        Identity owner = identity_at(q, 2);
        if (is_alive(owner)) continue;
        std::string why = fmt::format("lease {} of {}: owner pid {} is gone", q.i64(0), q.str(1), owner.pid);
        rp.did("lease_reclaimed", q.str(1), owner.pid, why);
        dead.emplace_back(q.i64(0), why);
    }
    if (rp.opts.dry_run) return;
    for (auto& [id, why] : dead) {
        store.prepare("DELETE FROM leases WHERE id=?").bind(1, id).run();
        store.add_event("", "lease_reclaimed", why);
    }
}

// exec users whose exec died: their rows go; the servers such an exec spawned with no live exec
// left to inherit the duty are to be stopped (outside the lock).
std::vector<ServerRow> reclaim_dead_execs(Reaper& rp, Store& store, const std::vector<ServerRow>& rows) {
    std::vector<ServerRow> to_stop;
    if (rp.opts.dry_run) {
        auto q = store.prepare("SELECT model, owner_pid, owner_start_ticks, owner_boot_id, stops_server FROM exec_users");
        while (q.step())
            if (!is_alive(identity_at(q, 1)))
                rp.did("exec_reclaimed", q.str(0), static_cast<pid_t>(q.i64(1)),
                       q.i64(4) ? "its exec is gone; it had started the server" : "its exec is gone");
        return to_stop;
    }
    for (auto& duty : reclaim_dead_exec_users(store))
        for (const auto& r : rows)
            if (r.name == duty.model && r.instance == duty.instance && r.status != "failed") to_stop.push_back(r);
    return to_stop;
}

// Marked processes of this state dir whose instance has no live row are orphans. A live row whose
// server (pid, start time, boot id: proven) carries other markers (instance, host, port) is a
// damaged row, not an orphan: the process's markers are the truth, the row is repaired (found by
// the corruption test: a flipped byte made a row's host a public address).
std::vector<MarkedProcess> find_orphans(Reaper& rp, Store* store, const std::vector<ServerRow>& rows, std::set<std::string>& live) {
    auto marked = scan_marked(rp.dir);
    for (auto& m : marked) {
        for (const auto& r : rows) {
            if (r.status == "failed" || r.server != m.id) continue;
            live.insert(m.instance);
            if (r.instance == m.instance && r.host == m.host && r.port == m.port) continue;
            std::string why = fmt::format("row instance {} host {} port {} repaired to the server's markers {} {} {}", r.instance,
                                          r.host, r.port.value_or(0), m.instance, m.host, m.port);
            rp.did("repaired", r.name, m.id.pid, why);
            if (!rp.opts.dry_run) {
                store->prepare("UPDATE servers SET instance=?, host=?, port=? WHERE name=? AND instance=?")
                    .bind(1, m.instance).bind(2, m.host).bind(3, m.port).bind(4, r.name).bind(5, r.instance).run();
                store->add_event(r.name, "repaired", why);
            }
        }
    }
    std::vector<MarkedProcess> orphans;
    for (auto& m : marked)
        if (!live.count(m.instance)) orphans.push_back(m);
    return orphans;
}

// Live rows: a start or stop whose llmctl died is to be finished; a running server unused for
// longer than its idle timeout, with no chat and no exec using it, is to be stopped.
void plan_live_rows(Reaper& rp, Store* store, const std::vector<ServerRow>& rows, const std::set<std::string>& live, Plan& plan) {
    auto duty = [&](const ServerRow& r) {
        return std::any_of(plan.duty_stops.begin(), plan.duty_stops.end(), [&](const ServerRow& d) { return d.instance == r.instance; });
    };
    for (const auto& r : rows) {
        if (!live.count(r.instance) || !is_alive(r.server) || duty(r)) continue;
        bool owner = owner_alive(r);
        if (r.status == "starting" && !owner) plan.adopt.push_back(r);
        else if (r.status == "stopping" && !owner) plan.finish_stop.push_back(r);
        else if (r.status == "running") {
            Millis limit = rp.idle_limit(r);
            if (limit.count() > 0 && r.last_used && rp.now - *r.last_used > limit.count() && !(store && server_use(*store, r).any()))
                plan.idle.push_back(r);
        }
    }
}

// Reads, decides and records in one transaction under the lock (a snapshot without it for
// --dry-run). A write that fails (a full disk) is a warning: the plan is carried out all the same.
Plan plan_under_lock(Reaper& rp) {
    Plan plan;
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
    std::vector<ServerRow> rows;
    if (store) {
        tx.emplace(*store, rp.opts.dry_run ? Transaction::Kind::deferred : Transaction::Kind::exclusive);
        rows = load_servers(*store);
    }
    auto live = clear_dead_rows(rp, store, rows);
    if (store) {
        reclaim_dead_leases(rp, *store);
        plan.duty_stops = reclaim_dead_execs(rp, *store, rows);
    }
    plan.orphans = find_orphans(rp, store, rows, live);
    plan_live_rows(rp, store, rows, live, plan);
    if (tx && !rp.opts.dry_run) {
        try {
            tx->commit();
        } catch (const StateWriteError& e) {
            rp.plan_recorded = false;
            rp.report.warnings.push_back(fmt::format("could not record what reap found ({}); it acts on it all the same, "
                                                     "and a later reap records it", e.what()));
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
            store.prepare("UPDATE servers SET status='running', ready_at=?, last_used=?, owner_pid=NULL, owner_start_ticks=NULL "
                          "WHERE name=? AND instance=?")
                .bind(1, t).bind(2, t).bind(3, r.name).bind(4, r.instance).run();
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

} // namespace

ReapReport reap(const std::string& state_dir, const Config& cfg, const ReapOptions& opts) {
    ReapReport report;
    if (!check_state_dir(state_dir)) return report; // nothing ever ran here
    Reaper rp{state_dir, cfg, opts, report};
    if (!opts.config_ok)
        report.warnings.push_back(opts.idle_timeout ? "log rotation skipped (it needs the config's log_max_size)"
                                                    : "idle stops and log rotation skipped (they need the config's idle_timeout and log_max_size)");
    if (!opts.dry_run) {
        try {
            for (auto& n : recover_lost_state(state_dir)) rp.did("rebuilt", n, 0, "row rebuilt from the server's markers");
        } catch (const StateWriteError& e) {
            report.warnings.push_back(fmt::format("the lost state file could not be rebuilt: {}", e.what()));
        }
    }
    Plan plan = plan_under_lock(rp);
    act_orphans(rp, plan.orphans);
    for (const auto& r : plan.adopt) act_adopt(rp, r);
    for (const auto& r : plan.finish_stop) act_finish_stop(rp, r);
    for (const auto& r : plan.duty_stops) act_duty_stop(rp, r);
    for (const auto& r : plan.idle) act_idle_stop(rp, r);
    if (opts.config_ok) act_rotate_logs(rp);
    if (!opts.dry_run) {
        // Short invocations skip the checkpoint on close; reap empties the WAL (TRUNCATE: a
        // passive checkpoint would leave frames that every new connection reads again).
        try {
            if (auto store = Store::open_read(state_db_path(state_dir))) store->exec("PRAGMA wal_checkpoint(TRUNCATE)");
        } catch (const Error&) {
        }
    }
    return report;
}

} // namespace llmctl
