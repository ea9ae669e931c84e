// llmctl start | stop | restart: the server lifecycle, coordinated through the state dir.

#include "commands.hpp"
#include "progress.hpp"

#include "llmctl/admission.hpp"
#include "llmctl/json_text.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/holds.hpp"
#include "llmctl/lookup.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/recovery.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/strings.hpp"
#include "llmctl/supervisor.hpp"

#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>

namespace llmctl::cli {

namespace {

void check_name(const std::string& name) {
    if (!valid_model_name(name))
        throw Error(Exit::usage, fmt::format("bad server name \"{}\"", name),
                    "names start with a letter or digit and hold only letters, digits, '.', '_' and '-'");
}

// Names of the servers the state file knows (for "did you mean" and `stop --all`).
std::vector<std::string> server_names(const std::string& dir) {
    std::vector<std::string> names;
    if (!check_state_dir(dir)) return names;
    if (auto store = Store::open_read(state_db_path(dir)))
        for (auto& r : load_servers(*store)) names.push_back(r.name);
    return names;
}

Error unknown_name(const Config& cfg, const std::string& dir, const std::string& name) {
    auto known = cfg.model_names();
    for (auto& n : server_names(dir)) known.push_back(n);
    return Error(Exit::unknown, fmt::format("unknown model \"{}\" in {}{}", name, cfg.source, did_you_mean_suffix(name, known)),
                 "list models with: llmctl config check; running servers (ad-hoc ones too) with: llmctl ps");
}

// The model a name stands for: a config entry, or a running ad-hoc server (by its recorded spec).
ModelConfig known_model(const Config& cfg, const std::string& dir, const std::string& name) {
    check_name(name);
    if (auto m = find_model(cfg, dir, name)) return *m;
    throw unknown_name(cfg, dir, name);
}

void warn_unrecorded(const StopResult& r, const std::string& name) {
    if (r.stopped && !r.unrecorded.empty())
        std::cerr << fmt::format("llmctl: warning: {} (pid {}) is stopped, but the state file could not record it: {}\n"
                                 "hint: its row is cleared by the next start, stop or reap that can write\n",
                                 name, r.pid, r.unrecorded);
}

// `start --dry-run`: what a start would do now, and why; changes nothing.
int print_dry_run(const std::string& dir, const ModelConfig& m, const Config& cfg, bool json) {
    if (m.external()) // as a start says
        throw Error(Exit::usage, fmt::format("model \"{}\" is external ({}): llmctl does not start it", m.name, m.url));
    AdmissionPreview p = preview_admission(dir, m, cfg);
    std::string action = "start", line;
    const std::string pool_text = p.pool
                                      ? fmt::format("it needs {} ({}) of pool {}, which has {} of {} in use", format_memory(p.need.bytes),
                                                    p.need.source, p.pool->name, format_memory(p.used), format_memory(p.budget))
                                      : "it is in no memory pool";
    if (p.row && p.row->status == "running" && is_alive(p.row->server)) {
        action = "running";
        line = fmt::format("{} is running (pid {}): a start does nothing", m.name, p.row->server.pid);
    } else if (p.row && owner_alive(*p.row) && p.row->status != "running" && p.row->status != "failed") {
        action = "wait_for_other";
        line = fmt::format("{} is {} (by pid {}): a start would wait for that", m.name, p.row->status, owner_of(*p.row).pid);
    }
    if (action != "start") {
        p.plan = {}; // the pool is not asked
    } else if (p.plan.kind == AdmissionPlan::Kind::evict) {
        action = "evict";
        line = fmt::format("{} would start after evicting {} server(s): {}", m.name, p.plan.victims.size(), pool_text);
    } else if (p.plan.kind == AdmissionPlan::Kind::wait) {
        action = "wait";
        line = fmt::format("{} would wait for memory: {}; {}", m.name, pool_text, p.plan.holders);
    } else {
        line = fmt::format("{} would start now: {}", m.name, pool_text);
    }
    if (json) {
        nlohmann::json victims = nlohmann::json::array();
        for (const auto& v : p.plan.victims)
            victims.push_back(
                {{"name", v.name}, {"pid", v.server.pid}, {"memory_bytes", v.memory.value_or(0)}, {"last_used", v.last_used.value_or(0)}});
        std::cout << json_text(nlohmann::json{{"name", m.name},
                                              {"action", action},
                                              {"pool", p.pool ? nlohmann::json(p.pool->name) : nlohmann::json()},
                                              {"need_bytes", p.pool ? nlohmann::json(p.need.bytes) : nlohmann::json()},
                                              {"need_source", p.pool ? nlohmann::json(p.need.source) : nlohmann::json()},
                                              {"budget_bytes", p.pool ? nlohmann::json(p.budget) : nlohmann::json()},
                                              {"used_bytes", p.pool ? nlohmann::json(p.used) : nlohmann::json()},
                                              {"victims", victims},
                                              {"waiting_for", action == "wait" ? nlohmann::json(p.plan.holders) : nlohmann::json()}})
                  << "\n";
        return 0;
    }
    std::cout << line << "\n";
    const std::int64_t now = now_ms();
    for (const auto& v : p.plan.victims)
        std::cout << fmt::format("  evict {} (pid {}, {}, idle {}): least recently used, no request in flight or waiting\n", v.name,
                                 v.server.pid, format_memory(static_cast<std::uint64_t>(v.memory.value_or(0))),
                                 format_duration(Millis(std::max<std::int64_t>(0, now - v.last_used.value_or(now)) / 1000 * 1000)));
    return 0;
}

} // namespace

std::function<int()> setup_start(CLI::App& app, Globals& g) {
    struct Opts {
        std::string name;
        std::vector<std::string> command;
        int port = 0;
        std::string timeout, health;
        bool no_wait = false, json = false, dry_run = false;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("name", o->name, "Model (config entry), or the name of an ad-hoc server")->required()->type_name("NAME");
    app.add_option("--port", o->port, "Use this port (1-65535)")->check(integer_between(1, 65535))->type_name("PORT");
    auto* timeout =
        app.add_option("--timeout", o->timeout, "Startup timeout (e.g. 90s; 0: no limit); default startup_timeout")->type_name("DUR");
    app.add_option("--health", o->health, "Ad-hoc server: ready when GET PATH answers 200, or tcp: when the port accepts (default /health)")
        ->type_name("PATH|tcp");
    app.add_flag("--no-wait", o->no_wait, "Return once spawned, before it is healthy")->excludes(timeout);
    app.add_flag("--json", o->json, "Print a JSON object instead of the URL");
    app.add_flag("--dry-run", o->dry_run,
                 "Say what a start would do now (start, wait, or evict which servers of its memory pool, and why); change nothing");
    app.footer("Idempotent: a running server prints its URL. Concurrent starts spawn one server.\n"
               "After --: an ad-hoc server NAME runs CMD ARGS... ({host} {port} {name} are replaced), with\n"
               "the [defaults] settings; only -- introduces a command.\n"
               "Examples:\n  llmctl start echo\n  curl \"$(llmctl start echo)/v1/models\"\n"
               "  llmctl start web --health / -- python3 -m http.server {port} --bind {host}\n"
               "  llmctl start db --health tcp -- redis-server --port {port}\n"
               "  llmctl start phi4 --dry-run\n");
    return [o, &g]() -> int {
        if (g.after_dashdash) o->command = *g.after_dashdash;
        Config cfg = load_config(g.config_path);
        std::string dir = resolve_state_dir(g.state_dir);
        check_name(o->name);
        ModelConfig m;
        if (!o->command.empty()) {
            m = adhoc_model(cfg, dir, o->name, o->command, o->health, canonical_path("."));
        } else {
            m = known_model(cfg, dir, o->name);
            if (!o->health.empty())
                throw Error(Exit::usage, "--health is for an ad-hoc server (start NAME --health PATH -- CMD)",
                            fmt::format("a configured model's readiness is its health key in {}", cfg.source));
        }
        if (o->dry_run) return print_dry_run(dir, m, cfg, o->json);
        StartOptions so;
        so.config = &cfg;
        if (o->port) so.port = o->port;
        if (!o->timeout.empty()) so.timeout = duration_flag("--timeout", o->timeout);
        so.wait = !o->no_wait;
        StatusLine status(g.verbosity < 0);
        show_start_progress(so, status, g, m.name);
        auto r = start_server(dir, m, so);
        status.clear();
        if (o->json) {
            std::cout << json_text(nlohmann::json{{"name", m.name},
                                                  {"url", r.url},
                                                  {"pid", r.pid},
                                                  {"port", r.port},
                                                  {"already_running", r.already_running},
                                                  {"adopted", r.adopted}})
                      << "\n";
        } else {
            std::cout << r.url << "\n";
        }
        if (r.already_running && g.verbosity > 0) std::cerr << "llmctl: " << m.name << " already running\n";
        return 0;
    };
}

std::function<int()> setup_stop(CLI::App& app, Globals& g) {
    struct Opts {
        std::vector<std::string> names;
        bool all = false;
        bool no_drain = false;
        std::string timeout;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("names", o->names, "Servers to stop")->type_name("NAME");
    app.add_flag("--all", o->all, "Stop every server of this state dir");
    app.add_option("--timeout", o->timeout, "Grace period after SIGTERM before SIGKILL (default stop_timeout)")->type_name("DUR");
    app.add_flag("--no-drain,--force", o->no_drain, "Do not wait for chats in flight (drain_timeout): SIGTERM at once, cutting them");
    app.footer("First the server is marked stopping: new chats wait (or, with --no-start, fail) and the chats\n"
               "in flight may finish, for up to drain_timeout (default 30s). Then SIGTERM, and SIGKILL after\n"
               "stop_timeout. Stopping a known model that is not running succeeds; an unknown name is exit 4.\n"
               "Works with a broken config (a warning; the built-in timeouts) and on a full disk.\n"
               "Examples:\n  llmctl stop echo\n  llmctl stop --all\n  llmctl stop --force echo\n");
    return [o, &g]() -> int {
        if (o->names.empty() == !o->all) throw Error(Exit::usage, "give server names or --all (not both)", "llmctl stop NAME... | --all");
        std::optional<Millis> timeout;
        if (!o->timeout.empty()) timeout = duration_flag("--timeout", o->timeout);
        CleanupConfig loaded = load_config_for_cleanup(g.config_path);
        if (!loaded.ok())
            std::cerr << fmt::format("llmctl: warning: the config cannot be used ({}); stopping with the built-in "
                                     "stop_timeout and drain_timeout\n",
                                     loaded.problem);
        const Config& cfg = loaded.config;
        std::string dir = resolve_state_dir(g.state_dir);
        if (o->all && check_state_dir(dir)) recover_lost_state(dir);
        std::vector<std::string> names = o->all ? server_names(dir) : o->names;
        auto running = server_names(dir);
        // Every name first: a typo stops nothing (exit 4), as start, restart and chat do.
        for (auto& n : names) {
            check_name(n);
            if (auto* m = cfg.find(n); m && m->external())
                throw Error(Exit::usage, fmt::format("model \"{}\" is external ({}): llmctl does not stop it", n, m->url));
            bool known = cfg.find(n) || std::find(running.begin(), running.end(), n) != running.end();
            if (!known && loaded.ok()) throw unknown_name(cfg, dir, n);
        }
        for (auto& n : names) {
            auto m = find_model(cfg, dir, n);
            ModelConfig mc = m ? *m : model_from_defaults(cfg.defaults, n);
            Millis drain = o->no_drain ? Millis(0) : mc.drain_timeout;
            // Held with the mark, so that no reap, serve or restart brings it back once it is down.
            auto r = stop_server(dir, n, timeout.value_or(mc.stop_timeout), drain, notifier(g), "stopped", "", {}, &mc);
            if (stop_holds(mc) && !r.held)
                std::cerr << fmt::format("llmctl: warning: {} could not be held down ({}): a reap may start it again\n", n, r.unrecorded);
            else if (r.held && g.verbosity > 0)
                std::cerr << fmt::format("llmctl: {} is held down until llmctl start {} (or apply)\n", n, n);
            warn_unrecorded(r, n);
            if (!r.stopped && g.verbosity >= 0) std::cerr << "llmctl: " << n << " is not running\n";
        }
        return 0;
    };
}

std::function<int()> setup_restart(CLI::App& app, Globals& g) {
    auto name = std::make_shared<std::string>();
    auto no_drain = std::make_shared<bool>(false);
    app.add_option("name", *name, "Model (or running ad-hoc server) to restart")->required()->type_name("NAME");
    app.add_flag("--no-drain,--force", *no_drain, "Do not wait for chats in flight (drain_timeout): they are cut");
    app.footer("A running server keeps the settings it was started with: restart after editing the config.\n"
               "An ad-hoc server (start NAME -- CMD) is restarted with its command, in its directory.\n"
               "Chats in flight finish on the old server (up to drain_timeout); chats that arrive meanwhile\n"
               "wait and then run on the new one.\n"
               "Examples:\n  llmctl restart echo\n  llmctl config check && llmctl restart phi4\n");
    return [name, no_drain, &g]() -> int {
        Config cfg = load_config(g.config_path);
        std::string dir = resolve_state_dir(g.state_dir);
        ModelConfig m = known_model(cfg, dir, *name);
        if (m.external()) throw Error(Exit::usage, fmt::format("model \"{}\" is external ({}): llmctl does not restart it", m.name, m.url));
        warn_unrecorded(stop_server(dir, m.name, m.stop_timeout, *no_drain ? Millis(0) : m.drain_timeout, notifier(g)), m.name);
        StartOptions so;
        so.config = &cfg;
        StatusLine status(g.verbosity < 0);
        show_start_progress(so, status, g, m.name);
        auto url = start_server(dir, m, so).url;
        status.clear();
        std::cout << url << "\n";
        return 0;
    };
}

} // namespace llmctl::cli
