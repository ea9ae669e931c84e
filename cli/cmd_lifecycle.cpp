// llmctl start | stop | restart: the server lifecycle, coordinated through the state dir.

#include "commands.hpp"
#include "progress.hpp"

#include "llmctl/errors.hpp"
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

// The model to start: a config entry, or an ad-hoc one from `-- CMD ARGS...`.
ModelConfig resolve_model(const Config& cfg, const std::string& name, const std::vector<std::string>& command) {
    if (!valid_model_name(name))
        throw Error(Exit::usage, fmt::format("bad server name \"{}\"", name),
                    "names start with a letter or digit and hold only letters, digits, '.', '_' and '-'");
    if (!command.empty()) {
        ModelConfig m = model_from_defaults(cfg.defaults, name);
        m.command = command;
        return m;
    }
    if (auto* m = cfg.find(name)) return *m;
    throw Error(Exit::unknown, fmt::format("unknown model \"{}\" in {}{}", name, cfg.source, did_you_mean_suffix(name, cfg.model_names())),
                "list models with: llmctl config check");
}

} // namespace

std::function<int()> setup_start(CLI::App& app, Globals& g) {
    struct Opts {
        std::string name;
        std::vector<std::string> command;
        int port = 0;
        std::string timeout;
        bool no_wait = false, json = false;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("name", o->name, "Model (config entry) or ad-hoc server name")->required()->type_name("NAME");
    app.add_option("--port", o->port, "Use this port (1-65535)")->check(integer_between(1, 65535))->type_name("PORT");
    auto* timeout = app.add_option("--timeout", o->timeout, "Startup timeout (e.g. 90s); default startup_timeout")->type_name("DUR");
    app.add_flag("--no-wait", o->no_wait, "Return once spawned, before it is healthy")->excludes(timeout);
    app.add_flag("--json", o->json, "Print a JSON object instead of the URL");
    app.footer("Idempotent: a running server prints its URL. Concurrent starts spawn one server.\n"
               "After --: an ad-hoc server NAME runs CMD ARGS... ({host} {port} {name} are replaced), with\n"
               "the [defaults] settings; only -- introduces a command.\n"
               "Examples:\n  llmctl start echo\n  curl \"$(llmctl start echo)/v1/models\"\n"
               "  llmctl start mysrv -- python3 -m http.server {port} --bind {host}\n");
    return [o, &g]() -> int {
        if (g.after_dashdash) o->command = *g.after_dashdash;
        Config cfg = load_config(g.config_path);
        ModelConfig m = resolve_model(cfg, o->name, o->command);
        StartOptions so;
        if (o->port) so.port = o->port;
        if (!o->timeout.empty()) so.timeout = duration_flag("--timeout", o->timeout);
        so.wait = !o->no_wait;
        StatusLine status(g.verbosity < 0);
        show_start_progress(so, status, g, m.name);
        auto r = start_server(resolve_state_dir(g.state_dir), m, so);
        status.clear();
        if (o->json) {
            std::cout << nlohmann::json{{"name", m.name}, {"url", r.url}, {"pid", r.pid}, {"port", r.port},
                                        {"already_running", r.already_running}, {"adopted", r.adopted}}.dump()
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
    app.add_flag("--no-drain,--force", o->no_drain,
                 "Do not wait for chats in flight (drain_timeout): SIGTERM at once, cutting them");
    app.footer("First the server is marked stopping: new chats wait (or, with --no-start, fail) and the chats\n"
               "in flight may finish, for up to drain_timeout (default 30s). Then SIGTERM, and SIGKILL after\n"
               "stop_timeout. Stopping something that is not running succeeds.\n"
               "Examples:\n  llmctl stop echo\n  llmctl stop --all\n  llmctl stop --force echo\n");
    return [o, &g]() -> int {
        if (o->names.empty() == !o->all) throw Error(Exit::usage, "give server names or --all (not both)", "llmctl stop NAME... | --all");
        Config cfg = load_config(g.config_path);
        std::string dir = resolve_state_dir(g.state_dir);
        std::vector<std::string> names = o->names;
        if (o->all && check_state_dir(dir)) recover_lost_state(dir);
        if (o->all && check_state_dir(dir))
            if (auto store = Store::open_read(state_db_path(dir)))
                for (auto& r : load_servers(*store)) names.push_back(r.name);
        std::optional<Millis> timeout;
        if (!o->timeout.empty()) timeout = duration_flag("--timeout", o->timeout);
        for (auto& n : names) {
            if (auto* m = cfg.find(n); m && m->external())
                throw Error(Exit::usage, fmt::format("model \"{}\" is external ({}): llmctl does not stop it", n, m->url));
            Millis t = timeout.value_or(cfg.find(n) ? cfg.find(n)->stop_timeout : cfg.defaults.stop_timeout);
            Millis drain = o->no_drain ? Millis(0) : (cfg.find(n) ? cfg.find(n)->drain_timeout : cfg.defaults.drain_timeout);
            bool stopped = stop_server(dir, n, t, drain, notifier(g));
            if (!stopped && g.verbosity >= 0) {
                // Still success (stop is idempotent), but a mistyped name deserves a hint.
                std::string also = cfg.find(n) ? "" : fmt::format(", nor a configured model{}", did_you_mean_suffix(n, cfg.model_names()));
                std::cerr << "llmctl: " << n << " is not running" << also << "\n";
            }
        }
        return 0;
    };
}

std::function<int()> setup_restart(CLI::App& app, Globals& g) {
    auto name = std::make_shared<std::string>();
    auto no_drain = std::make_shared<bool>(false);
    app.add_option("name", *name, "Model to restart")->required()->type_name("NAME");
    app.add_flag("--no-drain,--force", *no_drain, "Do not wait for chats in flight (drain_timeout): they are cut");
    app.footer("A running server keeps the settings it was started with: restart after editing the config.\n"
               "Chats in flight finish on the old server (up to drain_timeout); chats that arrive meanwhile\n"
               "wait and then run on the new one.\n"
               "Examples:\n  llmctl restart echo\n  llmctl config check && llmctl restart phi4\n");
    return [name, no_drain, &g]() -> int {
        Config cfg = load_config(g.config_path);
        ModelConfig m = resolve_model(cfg, *name, {});
        std::string dir = resolve_state_dir(g.state_dir);
        stop_server(dir, m.name, m.stop_timeout, *no_drain ? Millis(0) : m.drain_timeout, notifier(g));
        StartOptions so;
        StatusLine status(g.verbosity < 0);
        show_start_progress(so, status, g, m.name);
        auto url = start_server(dir, m, so).url;
        status.clear();
        std::cout << url << "\n";
        return 0;
    };
}

} // namespace llmctl::cli
