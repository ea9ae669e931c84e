#include "llmctl/reap.hpp"

#include "llmctl/exec_users.hpp"

#include "llmctl/health.hpp"
#include "llmctl/lock.hpp"
#include "llmctl/logfile.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/recovery.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/signal.hpp"
#include "llmctl/store.hpp"
#include "llmctl/supervisor.hpp"

#include <algorithm>
#include <csignal>
#include <dirent.h>
#include <fmt/format.h>
#include <set>
#include <sys/stat.h>
#include <thread>

namespace llmctl {

namespace {

const ModelConfig model_for(const Config& cfg, const std::string& name) {
    if (auto* m = cfg.find(name)) return *m;
    return model_from_defaults(cfg.defaults, name); // ad-hoc servers follow [defaults]
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

struct Lease {
    std::int64_t id;
    std::string model;
    Identity owner;
};

} // namespace

std::vector<ReapAction> reap(const std::string& state_dir, const Config& cfg, const ReapOptions& opts) {
    std::vector<ReapAction> actions;
    if (!check_state_dir(state_dir)) return actions; // nothing ever ran here
    if (!opts.dry_run)
        for (auto& n : recover_lost_state(state_dir)) actions.push_back({"rebuilt", n, 0, "row rebuilt from the server's markers"});

    std::vector<ServerRow> adopt, finish_stop, idle;
    std::vector<MarkedProcess> orphans;
    std::vector<std::pair<std::string, std::string>> exec_stops; // (model, instance)
    std::int64_t now = now_ms();
    {
        // Decisions and writes, under the lock. Nothing here waits for a process.
        auto lock = FileLock::acquire(state_lock_path(state_dir), lock_timeout());
        std::optional<Store> store;
        if (opts.dry_run) store = Store::open_read(state_db_path(state_dir));
        else store = Store::open_write(state_db_path(state_dir));
        std::vector<ServerRow> rows;
        std::vector<Lease> leases;
        std::optional<Transaction> tx;
        if (store) {
            tx.emplace(*store, opts.dry_run ? Transaction::Kind::deferred : Transaction::Kind::exclusive);
            rows = load_servers(*store);
            auto q = store->prepare("SELECT id, model, owner_pid, owner_start_ticks, owner_boot_id FROM leases ORDER BY id");
            while (q.step())
                leases.push_back({q.i64(0), q.str(1), identity_at(q, 2)});
        }
        // Servers an exec is using are in use, though their last_used says nothing of it (CMD
        // talks to the server directly): never idle.
        std::set<std::string> exec_used;
        if (store) {
            auto q = store->prepare("SELECT instance, owner_pid, owner_start_ticks, owner_boot_id FROM exec_users");
            while (q.step())
                if (is_alive(identity_at(q, 1)))
                    exec_used.insert(q.str(0));
        }
        std::set<std::string> live_instances;
        for (const auto& r : rows) {
            if (r.status == "failed") continue;
            bool alive = is_alive(r.server), owner = owner_alive(r);
            if (!alive && (r.status == "running" || !owner)) {
                std::string why = fmt::format("{} server's process is gone", r.status);
                actions.push_back({"reaped", r.name, r.server.pid, why});
                if (!opts.dry_run) {
                    store->prepare("DELETE FROM servers WHERE name=? AND instance=?").bind(1, r.name).bind(2, r.instance).run();
                    store->add_event(r.name, "reaped", fmt::format("pid {}: {}", r.server.pid, why));
                }
                continue;
            }
            live_instances.insert(r.instance);
            if (!alive) continue; // starting/stopping with a live owner: theirs to finish
            if (r.status == "starting" && !owner) adopt.push_back(r);
            else if (r.status == "stopping" && !owner) finish_stop.push_back(r);
            else if (r.status == "running") {
                Millis limit = opts.idle_timeout.value_or(model_for(cfg, r.name).idle_timeout);
                if (limit.count() > 0 && r.last_used && now - *r.last_used > limit.count() && !exec_used.count(r.instance))
                    idle.push_back(r);
            }
        }
        for (const auto& l : leases) {
            if (is_alive(l.owner)) continue;
            std::string why = fmt::format("lease {} of {}: owner pid {} is gone", l.id, l.model, l.owner.pid);
            actions.push_back({"lease_reclaimed", l.model, l.owner.pid, why});
            if (!opts.dry_run) {
                store->prepare("DELETE FROM leases WHERE id=?").bind(1, l.id).run();
                store->add_event(l.model, "lease_reclaimed", why);
            }
        }
        // exec users whose exec died: their rows go; a server such an exec started is stopped
        // below (outside the lock) unless another live exec still uses it.
        if (store && !opts.dry_run) {
            exec_stops = reclaim_dead_exec_users(*store);
        } else if (store) {
            auto q = store->prepare("SELECT model, owner_pid, owner_start_ticks, owner_boot_id, stops_server FROM exec_users");
            while (q.step())
                if (!is_alive(identity_at(q, 1)))
                    actions.push_back({"exec_reclaimed", q.str(0), static_cast<pid_t>(q.i64(1)),
                                       q.i64(4) ? "its exec is gone; it had started the server" : "its exec is gone"});
        }
        // Orphans: marked processes of this state dir whose instance has no live row. Scanned
        // under the lock, so no start can be between its spawn and its commit.
        auto marked = scan_marked(state_dir);
        // A live row whose server (pid, start time, boot id: proven) carries another instance
        // marker is a damaged row, not an orphan: the process's marker is the truth, the row
        // is repaired (event `repaired`) and the server kept (found by the corruption test).
        for (auto& m : marked) {
            if (live_instances.count(m.instance)) continue;
            for (const auto& r : rows) {
                if (r.status == "failed" || r.server != m.id) continue;
                live_instances.insert(m.instance);
                std::string why = fmt::format("row instance {} repaired to the server's marker {}", r.instance, m.instance);
                actions.push_back({"repaired", r.name, m.id.pid, why});
                if (!opts.dry_run) {
                    store->prepare("UPDATE servers SET instance=? WHERE name=? AND instance=?").bind(1, m.instance).bind(2, r.name).bind(3, r.instance).run();
                    store->add_event(r.name, "repaired", why);
                }
            }
        }
        for (auto& m : marked)
            if (!live_instances.count(m.instance)) orphans.push_back(m);
        if (tx && !opts.dry_run) tx->commit();
    }

    // Orphans: TERM, give them the stop timeout, KILL what is left; outside the lock.
    if (!orphans.empty()) {
        for (auto& o : orphans) actions.push_back({"orphan_killed", o.name, o.id.pid, fmt::format("instance {} has no live row", o.instance)});
        if (!opts.dry_run) {
            Millis grace = cfg.defaults.stop_timeout;
            for (auto& o : orphans) grace = std::max(grace, model_for(cfg, o.name).stop_timeout);
            for (auto& o : orphans) signal_identity(o.id, SIGTERM);
            auto deadline = std::chrono::steady_clock::now() + grace;
            auto any_alive = [&] { return std::any_of(orphans.begin(), orphans.end(), [](auto& o) { return is_alive(o.id); }); };
            while (any_alive() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            for (auto& o : orphans)
                if (is_alive(o.id)) signal_identity(o.id, SIGKILL);
            auto lock = FileLock::acquire(state_lock_path(state_dir), lock_timeout());
            Store store = Store::open_write(state_db_path(state_dir));
            Transaction tx(store);
            for (auto& o : orphans) store.add_event(o.name, "orphan_killed", fmt::format("pid {} instance {}", o.id.pid, o.instance));
            tx.commit();
        }
    }

    // `starting` rows whose owner died while the server lives: ready → adopt as running;
    // past its startup timeout → stop; still loading → leave it (a start adopts it too).
    for (const auto& r : adopt) {
        ModelConfig m = model_for(cfg, r.name);
        std::vector<pid_t> pids;
        for (auto& p : server_processes(r.server, r.instance)) pids.push_back(p.pid);
        auto listeners = r.port ? port_listeners(r.host, static_cast<int>(*r.port), pids) : PortListeners{};
        bool ready = listeners.ours && !listeners.stranger &&
                     probe_health(r.host, static_cast<int>(*r.port), m.health, Millis(1000)) == 200;
        bool overdue = r.started_at && now - *r.started_at > m.startup_timeout.count();
        if (ready) {
            actions.push_back({"adopted", r.name, r.server.pid, "its start died; the server is healthy: now running"});
            if (opts.dry_run) continue;
            auto lock = FileLock::acquire(state_lock_path(state_dir), lock_timeout());
            Store store = Store::open_write(state_db_path(state_dir));
            Transaction tx(store);
            auto q = store.prepare("SELECT owner_pid, owner_start_ticks FROM servers WHERE name=? AND instance=? AND status='starting'");
            q.bind(1, r.name).bind(2, r.instance);
            if (q.step()) {
                ServerRow again = r;
                again.owner_pid = q.opt_i64(0);
                again.owner_start_ticks = q.opt_i64(1);
                if (!owner_alive(again)) {
                    std::int64_t t = now_ms();
                    store.prepare("UPDATE servers SET status='running', ready_at=?, last_used=?, owner_pid=NULL, owner_start_ticks=NULL "
                                  "WHERE name=? AND instance=?")
                        .bind(1, t).bind(2, t).bind(3, r.name).bind(4, r.instance).run();
                    store.add_event(r.name, "adopted", fmt::format("pid {} by reap", r.server.pid));
                }
            }
            tx.commit();
        } else if (overdue) {
            actions.push_back({"reaped", r.name, r.server.pid, "its start died and it is not healthy after startup_timeout"});
            if (!opts.dry_run)
                stop_server(state_dir, r.name, m.stop_timeout, Millis(0), {}, "reaped", "start died, never healthy",
                            [&](const ServerRow& now_row) { return same_unowned(now_row, r, "starting"); });
        }
    }
    for (const auto& r : finish_stop) {
        actions.push_back({"reaped", r.name, r.server.pid, "its stop died halfway: stop finished"});
        if (!opts.dry_run)
            stop_server(state_dir, r.name, model_for(cfg, r.name).stop_timeout, Millis(0), {}, "reaped", "stop died halfway",
                        [&](const ServerRow& now_row) { return same_unowned(now_row, r, "stopping"); });
    }
    for (const auto& [model, instance] : exec_stops) {
        const ModelConfig mc = model_for(cfg, model);
        std::string why = "the llmctl exec that started it died";
        std::optional<ServerRow> row;
        if (auto reader = Store::open_read(state_db_path(state_dir))) row = find_server(*reader, model);
        if (!row || row->instance != instance) continue;
        bool stopped = stop_server(state_dir, model, mc.stop_timeout, mc.drain_timeout, {}, "reaped", why,
                                   [&, inst = instance](const ServerRow& now_row) { return now_row.instance == inst && now_row.status == "running"; });
        if (stopped) actions.push_back({"reaped", model, row->server.pid, why});
    }
    for (const auto& r : idle) {
        Millis limit = opts.idle_timeout.value_or(model_for(cfg, r.name).idle_timeout);
        std::string why = fmt::format("idle for {} (idle_timeout {})", format_duration(Millis((now - *r.last_used) / 1000 * 1000)),
                                      format_duration(limit));
        if (opts.dry_run) {
            actions.push_back({"reaped", r.name, r.server.pid, why});
            continue;
        }
        const ModelConfig mc = model_for(cfg, r.name);
        bool stopped = stop_server(state_dir, r.name, mc.stop_timeout, mc.drain_timeout, {}, "reaped", why,
                                   [&](const ServerRow& now_row) {
                                       return now_row.instance == r.instance && now_row.status == "running" && now_row.last_used &&
                                              now_ms() - *now_row.last_used > limit.count();
                                   });
        if (stopped) actions.push_back({"reaped", r.name, r.server.pid, why});
    }

    // Logs above log_max_size: rotate (per-log lock, never the state lock).
    std::string logs = state_dir + "/logs";
    if (DIR* d = ::opendir(logs.c_str())) {
        std::vector<std::string> files;
        while (auto* e = ::readdir(d)) {
            std::string f = e->d_name;
            if (f.size() > 4 && f.compare(f.size() - 4, 4, ".log") == 0) files.push_back(f);
        }
        ::closedir(d);
        std::sort(files.begin(), files.end());
        for (auto& f : files) {
            std::string name = f.substr(0, f.size() - 4);
            ModelConfig m = model_for(cfg, name);
            std::string path = logs + "/" + f;
            struct stat sb {};
            if (m.log_max_size == 0 || ::stat(path.c_str(), &sb) != 0 || static_cast<std::uint64_t>(sb.st_size) <= m.log_max_size) continue;
            std::string detail = fmt::format("{} is {} > log_max_size {}", path, format_size(static_cast<std::uint64_t>(sb.st_size)),
                                             format_size(m.log_max_size));
            if (!opts.dry_run) {
                auto res = rotate_log(path, m.log_max_size, m.log_keep);
                if (!res.rotated) continue;
                detail += fmt::format("; moved {} to {}.1{}", format_size(res.removed), f,
                                      res.collapsed ? "" : " (copytruncate: " + res.fallback_reason + ")");
            }
            actions.push_back({"rotated", name, 0, detail});
        }
    }

    if (!opts.dry_run) {
        // Short invocations skip the checkpoint on close; reap empties the WAL (TRUNCATE: a
        // passive checkpoint would leave frames that every new connection reads again).
        if (auto store = Store::open_read(state_db_path(state_dir))) store->exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    return actions;
}

} // namespace llmctl
