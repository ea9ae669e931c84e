#include "llmctl/server_exit.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/exits.hpp"
#include "llmctl/files.hpp"
#include "llmctl/lookup.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/prober.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"
#include "llmctl/strings.hpp"
#include "llmctl/supervisor.hpp"
#include "llmctl/units.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

namespace llmctl {

namespace {

constexpr Millis k_max_delay{300'000};

// The config the server came from, read before the lock (nullopt and `problem` when it cannot be).
std::optional<Config> origin_config(const std::string& origin, std::string& problem) {
    try {
        if (origin.empty() || origin == "<built-in>") return builtin_config();
        return load_config_file(origin);
    } catch (const Error& e) {
        problem = e.what();
        return std::nullopt;
    }
}

// The model a restart starts: its config's settings (policy, ports, timeouts, pool) with the
// row's recorded command, env, cwd and health, so that a restart re-runs what ran (a changed
// config is `apply`'s business). nullopt (and `why`) when the model left its config.
std::optional<ModelConfig> restart_model(const Config& cfg, const ServerRow& row, std::string& why) {
    auto recorded = model_from_spec(cfg.defaults, row.name, row.spec_json);
    if (!recorded) {
        why = "its row records no command";
        return std::nullopt;
    }
    auto spec = nlohmann::json::parse(row.spec_json, nullptr, false);
    const auto adhoc = spec.is_object() ? spec.find("adhoc") : spec.end();
    if (adhoc != spec.end() && adhoc->is_boolean() && adhoc->get<bool>()) {
        recorded->origin = cfg.origin;
        return recorded;
    }
    const ModelConfig* m = cfg.find(row.name);
    if (!m || m->command.empty()) {
        why = fmt::format("model {} is no longer in {}", row.name, cfg.source);
        return std::nullopt;
    }
    ModelConfig out = *m;
    out.command = recorded->command;
    out.env = recorded->env;
    out.cwd = recorded->cwd;
    out.health = recorded->health;
    return out;
}

enum class Next { nothing, restart, give_up };

struct Decided {
    Next next = Next::nothing;
    std::string why;                // for nothing: why not
    bool reported_by_start = false; // a start waits for it: that start reports the failure
    int restarts_in_window = 0;
    std::int64_t restarts = 0; // the row's, carried to the next
    std::optional<ModelConfig> model;
};

bool is_me(const ServerRow& row, const Identity& me) { return owner_of(row) == me; }

// Under the lock: what the exit of `row` (ours: the same instance) calls for.
Decided decide_after_exit(Store& store, const ServerRow& row, const ExitRecord& e, const std::optional<Config>& cfg,
                          const std::string& cfg_problem) {
    Decided d;
    d.restarts = row.restarts;
    if (row.status == "stopping") return d.why = "it was being stopped", d;
    if (row.status == "starting" && owner_alive(row)) return d.reported_by_start = true, d;
    if (row.status != "running" && row.status != "starting") return d.why = "status " + row.status, d;
    if (!cfg) return d.why = "its config cannot be read: " + cfg_problem, d;
    d.model = restart_model(*cfg, row, d.why);
    if (!d.model) return d;
    // Stopped by its prober for being wedged: a failure, whatever code the server exited with.
    const std::optional<int> code = stopped_as_wedged(row.error) ? std::nullopt : e.code;
    if (!policy_restarts(d.model->restart, code)) return d.why = fmt::format("restart = \"{}\"", d.model->restart), d;
    d.restarts_in_window = restarts_since(store, row.name, e.at - d.model->restart_window.count());
    d.next = d.restarts_in_window >= d.model->restart_max ? Next::give_up : Next::restart;
    return d;
}

// The row waits for its restart: `restarting`, with us as its owner.
void mark_restarting(Store& store, const ServerRow& row, const Identity& me) {
    store.prepare("UPDATE servers SET status='restarting', owner_pid=?, owner_start_ticks=? WHERE name=? AND instance=?")
        .bind(1, me.pid)
        .bind(2, static_cast<std::int64_t>(me.start_ticks))
        .bind(3, row.name)
        .bind(4, row.instance)
        .run();
}

// A crash loop ends: the row is `failed` with the last exit and the log's last lines.
void mark_given_up(Store& store, const ServerRow& row, const ModelConfig& m, const std::string& last_exit) {
    std::string tail = last_lines(read_tail(row.log_path, 16 * 1024).value_or(""), 5);
    std::string why =
        fmt::format("crash loop: {} restarts within {}; last exit: {}", m.restart_max, format_duration(m.restart_window), last_exit);
    store.prepare("UPDATE servers SET status='failed', error=? WHERE name=? AND instance=?")
        .bind(1, tail.empty() ? why : why + "\n" + tail)
        .bind(2, row.name)
        .bind(3, row.instance)
        .run();
    forget_restarts(store, row.name);
    store.add_event(row.name, "failed", why + "; llmctl start " + row.name + " starts it again");
}

// Sleeps `delay`, polling that our `restarting` row is still there (a stop or a user's start may
// take it meanwhile: false).
bool wait_while_ours(const std::string& state_dir, const std::string& name, const Identity& me, Millis delay) {
    const auto end = std::chrono::steady_clock::now() + delay;
    for (;;) {
        auto reader = Store::open_read(state_db_path(state_dir));
        auto row = reader ? find_server(*reader, name) : std::nullopt;
        if (!row || row->status != "restarting" || !is_me(*row, me)) return false;
        const auto left = end - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) return true;
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(50)));
    }
}

double jitter() {
    static std::mt19937 rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(-1.0, 1.0)(rng);
}

// A restart whose start failed (fail_start left its row `failed`, still ours): by the policy,
// again (true, the row `restarting` once more) or given up.
bool again_after_failed_start(const std::string& state_dir, const std::string& name, const ModelConfig& m, const Identity& me,
                              int& restarts_in_window, const std::function<void(const std::string&)>& note) {
    auto locked = open_locked(state_dir);
    auto& store = locked.store;
    Transaction tx(store);
    auto row = find_server(store, name);
    if (!row || row->status != "failed" || !is_me(*row, me)) return false;
    restarts_in_window = restarts_since(store, name, now_ms() - m.restart_window.count());
    if (restarts_in_window >= m.restart_max) {
        set_exit_action(store, *row, "failed");
        mark_given_up(store, *row, m, "its start failed: " + row->error.substr(0, row->error.find('\n')));
        tx.commit();
        note(fmt::format("{}: gave up after {} restarts within {}", name, m.restart_max, format_duration(m.restart_window)));
        return false;
    }
    set_exit_action(store, *row, "restarted");
    mark_restarting(store, *row, me);
    store.add_event(name, "restarting", fmt::format("restart {} of {} (its last start failed)", restarts_in_window + 1, m.restart_max));
    tx.commit();
    return true;
}

void restart_loop(const ServerExit& x, const ModelConfig& m, const Config& cfg, int restarts_in_window, std::int64_t restarts,
                  const std::function<void(const std::string&)>& note) {
    const Identity me = self_identity();
    for (;;) {
        Millis delay = restart_delay_for(m.restart_delay, restarts_in_window, jitter());
        if (!wait_while_ours(x.state_dir, x.name, me, delay)) {
            note(fmt::format("{}: restart called off (stopped or started meanwhile)", x.name));
            return;
        }
        StartOptions o;
        o.policy_restart = true;
        o.restarts = ++restarts;
        o.config = &cfg;
        o.progress = note;
        try {
            auto r = start_server(x.state_dir, m, o);
            note(fmt::format("{}: restarted as pid {} on port {}", x.name, r.pid, r.port));
            return;
        } catch (const Error& e) {
            note(fmt::format("{}: restart failed: {}", x.name, e.what()));
            if (e.code() == Exit::interrupted) return;
            if (!again_after_failed_start(x.state_dir, x.name, m, me, restarts_in_window, note)) return;
        }
    }
}

} // namespace

bool policy_restarts(const std::string& policy, std::optional<int> code) {
    if (policy == "always") return true;
    if (policy == "on-failure") return !(code && *code == 0);
    return false;
}

Millis restart_delay_for(Millis first, int n, double jitter_unit) {
    double ms = static_cast<double>(first.count()) * std::pow(2.0, std::min(n, 30));
    ms = std::min(ms, static_cast<double>(k_max_delay.count()));
    ms *= 1.0 + 0.1 * std::clamp(jitter_unit, -1.0, 1.0);
    return Millis(static_cast<std::int64_t>(std::min(ms, static_cast<double>(k_max_delay.count()))));
}

void handle_server_exit(const ServerExit& x, const std::function<void(const std::string&)>& note) {
    std::string cfg_problem;
    const std::optional<Config> cfg = origin_config(x.origin, cfg_problem);
    const Identity me = self_identity();
    Decided d;
    ExitRecord e;
    {
        auto locked = open_locked(x.state_dir);
        auto& store = locked.store;
        Transaction tx(store);
        auto row = find_server(store, x.name);
        // The row of the server that exited: its instance and pid, and no longer alive (a
        // monitor-exit run by hand for a live server must not make a second one).
        const bool ours = row && row->instance == x.instance && row->server.pid == x.pid && !is_alive(row->server);
        e = exit_from_wait_status(x.wait_status, x.oom_kills, ours && row->status == "stopping");
        e.name = x.name;
        e.instance = x.instance;
        e.pid = x.pid;
        e.at = x.at;
        if (ours && stopped_as_wedged(row->error)) e.cause += " after its probe found it " + row->error; // the prober stopped it
        if (ours)
            d = decide_after_exit(store, *row, e, cfg, cfg_problem);
        else
            d.why = "its row is gone (stopped)";
        e.action = d.next == Next::restart ? "restarted" : d.next == Next::give_up ? "failed" : "";
        record_exit(store, e);
        store.add_event(x.name, "exited", fmt::format("pid {}: {}", x.pid, e.cause));
        if (d.next == Next::restart) {
            mark_restarting(store, *row, me);
            store.add_event(x.name, "restarting",
                            fmt::format("restart {} of {} within {} (restart = \"{}\")", d.restarts_in_window + 1, d.model->restart_max,
                                        format_duration(d.model->restart_window), d.model->restart));
        } else if (d.next == Next::give_up) {
            mark_given_up(store, *row, *d.model, e.cause);
        }
        tx.commit();
    }
    if (d.reported_by_start) return; // its output ends the start's error: nothing of ours in between
    note(fmt::format("{} (pid {}) {}; {}", x.name, x.pid, e.cause,
                     d.next == Next::restart   ? "restarting it"
                     : d.next == Next::give_up ? "crash loop: failed, not restarted"
                                               : "not restarted: " + d.why));
    if (d.next == Next::restart) restart_loop(x, *d.model, *cfg, d.restarts_in_window, d.restarts, note);
}

} // namespace llmctl
