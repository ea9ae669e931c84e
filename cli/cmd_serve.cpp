// llmctl serve [--listen HOST:PORT]: one OpenAI-compatible endpoint for every configured model,
// starting models on demand and sharing the state file's slots with every chat and every other
// serve (the library's gateway.cpp); a foreground process that keeps no state of its own.

#include "commands.hpp"
#include "output.hpp"

#include "llmctl/address.hpp"
#include "llmctl/caught_signals.hpp"
#include "llmctl/config_watch.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/gateway.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/units.hpp"

#include <cstdlib>
#include <set>
#include <fmt/format.h>
#include <iostream>
#include <unistd.h>

namespace llmctl::cli {

namespace {

// The flags; each given one overrides its [serve] key (`given` holds those given).
struct Opts {
    std::string listen;
    std::string api_key_env;
    bool no_auth = false;
    std::vector<std::string> cors_origins;
    std::vector<std::string> allowed_hosts;
    std::string max_body;
    std::string header_timeout;
    std::string drain_timeout;
    std::string reap_every;
    int max_queue = 0;
    std::set<std::string> given;
};

std::pair<std::string, int> listen_address(const std::string& s, const std::string& from) {
    auto a = parse_listen_address(s);
    if (!a)
        throw Error(Exit::usage, fmt::format("{} \"{}\" is not HOST:PORT", from, s),
                    "e.g. 127.0.0.1:8080, [::1]:8080, 0.0.0.0:8080 (every interface: needs --api-key-env or --no-auth) or :8080");
    return *a;
}

std::string listen_of(const Opts& o, const Config& cfg) { return o.given.count("--listen") ? o.listen : cfg.serve.listen; }

// The key clients must send: the value of --api-key-env or [serve] api_key_env ("" = none).
std::string api_key(const Opts& o, const Config& cfg) {
    bool flag = o.given.count("--api-key-env") > 0;
    std::string var = flag ? o.api_key_env : cfg.serve.api_key_env;
    if (var.empty()) return {};
    const char* key = std::getenv(var.c_str());
    if (!key || !*key)
        throw Error(Exit::usage,
                    fmt::format("{} {}: the variable is not set or empty", flag ? "--api-key-env" : "[serve] api_key_env", var),
                    "export the key first (it is never logged), or leave the key out on a loopback address");
    return key;
}

// The settings in force: [serve] from `cfg`, each flag given overriding its key.
GatewaySettings settings_from(const Opts& o, Config cfg, const std::string& listen_host) {
    GatewaySettings s;
    const ServeSettings& c = cfg.serve;
    auto flag = [&](const char* name) { return o.given.count(name) > 0; };
    s.api_key = api_key(o, cfg);
    if (s.api_key.empty() && !o.no_auth && !is_loopback(listen_host))
        throw Error(
            Exit::usage, fmt::format("serving on {} without an API key would let anyone on the network use the models", listen_of(o, cfg)),
            "give --api-key-env VAR or [serve] api_key_env (clients send Authorization: Bearer KEY), or --no-auth if that is intended");
    s.cors_origins = flag("--cors-origin") ? o.cors_origins : c.cors_origins;
    s.allowed_hosts = flag("--allow-host") ? o.allowed_hosts : c.allowed_hosts;
    s.limits.max_body = c.max_body;
    if (flag("--max-body")) s.limits.max_body = size_flag("--max-body", o.max_body);
    s.limits.header_timeout = flag("--header-timeout") ? duration_flag("--header-timeout", o.header_timeout) : c.header_timeout;
    s.drain_timeout = flag("--drain-timeout") ? duration_flag("--drain-timeout", o.drain_timeout) : c.drain_timeout;
    s.reap_every = flag("--reap-every") ? duration_flag("--reap-every", o.reap_every) : c.reap_every;
    s.max_queue = flag("--max-queue") ? o.max_queue : c.max_queue;
    for (const auto& entry : cfg.models) std::cerr << unverified_tls_warning(entry.second); // at each start and reload
    s.config = std::make_shared<const Config>(std::move(cfg));
    return s;
}

int run(const Opts& o, Globals& g) {
    Config cfg = load_config(g.config_path);
    GatewayOptions go;
    go.state_dir = resolve_state_dir(g.state_dir);
    std::string listen = listen_of(o, cfg);
    std::tie(go.listen_host, go.listen_port) = listen_address(listen, o.given.count("--listen") ? "--listen" : "[serve] listen");
    go.settings = settings_from(o, cfg, go.listen_host);
    catch_cancel();
    catch_sighup();
    go.stop_requested = [] { return cancel_signal() != 0; };
    go.stop_now = [] { return cancel_count() >= 2; };
    auto watch = std::make_shared<ConfigWatch>(resolve_config_path(g.config_path));
    go.reload_requested = [watch] {
        const bool hup = take_sighup();
        const bool changed = watch->changed(); // (asked always: the watch keeps up)
        return hup || changed;
    };
    go.reload = [&o, &g, host = go.listen_host, listen] {
        Config fresh = load_config(g.config_path);
        if (listen_of(o, fresh) != listen)
            std::cerr << fmt::format("llmctl serve: [serve] listen is now \"{}\"; the address changes when serve restarts\n",
                                     fresh.serve.listen);
        return settings_from(o, std::move(fresh), host);
    };
    bool quiet = g.verbosity < 0;
    go.on_ready = [&](const std::string& url) {
        if (!quiet)
            std::cerr << fmt::format("llmctl serve: listening on {}/v1 ({} models, state {})\n", url, cfg.models.size(), go.state_dir);
    };
    go.log = [](const std::string& line) { // one write per line: threads log at once
        std::string whole = line + '\n';
        (void)!::write(STDERR_FILENO, whole.data(), whole.size());
    };
    GatewayEnd end = run_gateway(go);
    if (!quiet) std::cerr << (end.drained ? "llmctl serve: stopped\n" : "llmctl serve: stopped (requests in flight cut)\n");
    if (!end.drained) {
        if (end.fatal) print_error(*end.fatal);
        std::cerr << std::flush;
        std::cout << std::flush;
        // the threads of the cut requests still run: no destructors under their feet
        ::_exit(end.fatal ? static_cast<int>(end.fatal->code()) : 0);
    }
    if (end.fatal) throw *end.fatal; // main prints it and exits with its code
    return 0;
}

} // namespace

std::function<int()> setup_serve(CLI::App& app, Globals& g) {
    auto o = std::make_shared<Opts>();
    std::vector<CLI::Option*> flags = {
        app.add_option("--listen", o->listen, "Address to serve on (default 127.0.0.1:8080)")->type_name("HOST:PORT"),
        app.add_option("--api-key-env", o->api_key_env, "Clients must send this variable's value as Authorization: Bearer")
            ->type_name("VAR"),
        app.add_option("--cors-origin", o->cors_origins, "A browser origin allowed to call (repeatable; * for any)")->type_name("ORIGIN"),
        app.add_option("--allow-host", o->allowed_hosts, "Another name clients may send as Host (repeatable)")->type_name("NAME"),
        app.add_option("--max-body", o->max_body, "Largest request body (default 32MiB; larger: 413)")->type_name("SIZE"),
        app.add_option("--header-timeout", o->header_timeout, "Time for a request's headers (default 10s)")->type_name("DURATION"),
        app.add_option("--drain-timeout", o->drain_timeout, "On SIGTERM/SIGINT, time for requests in flight (default 30s)")
            ->type_name("DURATION"),
        app.add_option("--max-queue", o->max_queue, "Requests that may wait per model before 429 (default 64)")
            ->type_name("N")
            ->check(integer_between(1, 1000000)),
        app.add_option("--reap-every", o->reap_every, "Run reap this often (default 30s; 0: never)")->type_name("DURATION"),
    };
    app.add_flag("--no-auth", o->no_auth, "Allow a non-loopback address without an API key");
    app.footer("Each flag overrides its key in the config's [serve] table (llmctl.toml(5)).\n"
               "Routes: POST /v1/chat/completions, /v1/completions, /v1/embeddings (by the body's \"model\": a\n"
               "config name, a model's `model` value or an alias), GET /v1/models, GET /health,\n"
               "GET|POST /upstream/NAME/PATH (PATH to NAME's own server as is; a GET never starts it).\n"
               "A stopped model is started on demand; every request holds a slot (max_concurrent) shared\n"
               "with llmctl chat and other serve processes. Access log: stderr and `llmctl logs @serve`.\n"
               "SIGHUP or a change of the config file: reload it (requests in flight keep theirs).\n"
               "SIGTERM or Ctrl-C: finish requests (a second one: cut them), exit 0.\n"
               "Under systemd (Type=notify) it reports ready, reloading and stopping.\n"
               "Examples:\n  llmctl serve\n"
               "  OPENAI_BASE_URL=http://127.0.0.1:8080/v1 my-app\n"
               "  KEY=secret llmctl serve --listen 0.0.0.0:8080 --api-key-env KEY\n");
    return [o, flags, &g]() -> int {
        for (auto* f : flags)
            if (f->count() > 0) o->given.insert(f->get_name());
        return run(*o, g);
    };
}

} // namespace llmctl::cli
