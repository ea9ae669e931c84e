// llmctl serve [--listen HOST:PORT]: one OpenAI-compatible endpoint for every configured model,
// starting models on demand and sharing the state file's slots with every chat and every other
// serve (the library's gateway.cpp); a foreground process that keeps no state of its own.

#include "commands.hpp"
#include "output.hpp"

#include "llmctl/address.hpp"
#include "llmctl/caught_signals.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/gateway.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/units.hpp"

#include <charconv>
#include <cstdlib>
#include <ctime>
#include <fmt/format.h>
#include <iostream>
#include <unistd.h>

namespace llmctl::cli {

namespace {

struct Opts {
    std::string listen = "127.0.0.1:8080";
    std::string api_key_env;
    bool no_auth = false;
    std::vector<std::string> cors_origins;
    std::string max_body = "32MiB";
    std::string header_timeout = "10s";
    std::string drain_timeout = "30s";
    int max_queue = 64;
};

// "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" (the loopback).
std::pair<std::string, int> parse_listen(const std::string& s) {
    auto bad = [&] {
        return Error(Exit::usage, fmt::format("--listen \"{}\" is not HOST:PORT", s),
                     "e.g. 127.0.0.1:8080, [::1]:8080, 0.0.0.0:8080 (every interface: needs --api-key-env or --no-auth) or :8080");
    };
    std::string host = "127.0.0.1", port = s;
    auto colon = s.rfind(':');
    if (colon != std::string::npos) {
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
        if (host.empty()) host = "127.0.0.1";
        if (host.front() == '[') {
            if (host.back() != ']') throw bad();
            host = host.substr(1, host.size() - 2);
        } else if (host.find(':') != std::string::npos)
            throw bad(); // a bare IPv6 literal needs brackets before its port
    }
    if (!valid_host(host)) throw bad();
    int n = -1;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || n < 0 || n > 65535) throw bad();
    return {bare_host(host), n};
}

bool loopback(const std::string& host) { return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0; }

std::string now_stamp() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

int run(const Opts& o, Globals& g) {
    Config cfg = load_config(g.config_path);
    GatewayOptions go;
    go.state_dir = resolve_state_dir(g.state_dir);
    std::tie(go.listen_host, go.listen_port) = parse_listen(o.listen);
    if (!o.api_key_env.empty()) {
        const char* key = std::getenv(o.api_key_env.c_str());
        if (!key || !*key)
            throw Error(Exit::usage, fmt::format("--api-key-env {}: the variable is not set or empty", o.api_key_env),
                        "export the key first (it is never logged), or leave --api-key-env out on a loopback address");
        go.api_key = key;
    }
    if (go.api_key.empty() && !o.no_auth && !loopback(go.listen_host))
        throw Error(Exit::usage, fmt::format("serving on {} without an API key would let anyone on the network use the models", o.listen),
                    "give --api-key-env VAR (clients send Authorization: Bearer KEY), or --no-auth if that is intended");
    go.cors_origins = o.cors_origins;
    auto size = parse_size(o.max_body);
    if (!size) throw Error(Exit::usage, fmt::format("--max-body \"{}\" is not a size", o.max_body), "e.g. 32MiB");
    go.limits.max_body = *size;
    go.limits.header_timeout = duration_flag("--header-timeout", o.header_timeout);
    go.drain_timeout = duration_flag("--drain-timeout", o.drain_timeout);
    go.max_queue = o.max_queue;
    catch_cancel();
    go.stop_requested = [] { return cancel_signal() != 0; };
    bool quiet = g.verbosity < 0;
    go.on_ready = [&](const std::string& url) {
        if (!quiet)
            std::cerr << fmt::format("llmctl serve: listening on {}/v1 ({} models, state {})\n", url, cfg.models.size(), go.state_dir);
    };
    go.log = [](const std::string& line) { std::cerr << now_stamp() << ' ' << line << '\n' << std::flush; };
    GatewayEnd end = run_gateway(go, cfg);
    if (!quiet) std::cerr << (end.drained ? "llmctl serve: stopped\n" : "llmctl serve: stopped (requests cut at --drain-timeout)\n");
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
    app.add_option("--listen", o->listen, "Address to serve on (default 127.0.0.1:8080)")->type_name("HOST:PORT");
    app.add_option("--api-key-env", o->api_key_env, "Clients must send this variable's value as Authorization: Bearer")->type_name("VAR");
    app.add_flag("--no-auth", o->no_auth, "Allow a non-loopback --listen without an API key");
    app.add_option("--cors-origin", o->cors_origins, "A browser origin allowed to call (repeatable; * for any)")->type_name("ORIGIN");
    app.add_option("--max-body", o->max_body, "Largest request body (default 32MiB; larger: 413)")->type_name("SIZE");
    app.add_option("--header-timeout", o->header_timeout, "Time for a request's headers (default 10s)")->type_name("DURATION");
    app.add_option("--drain-timeout", o->drain_timeout, "On SIGTERM/SIGINT, time for requests in flight (default 30s)")
        ->type_name("DURATION");
    app.add_option("--max-queue", o->max_queue, "Requests that may wait per model before 429 (default 64)")
        ->type_name("N")
        ->check(integer_between(1, 1000000));
    app.footer("Routes: POST /v1/chat/completions, /v1/completions, /v1/embeddings (by the body's \"model\": a\n"
               "config name, a model's `model` value or an alias), GET /v1/models, GET /health.\n"
               "A stopped model is started on demand; every request holds a slot (max_concurrent) shared\n"
               "with llmctl chat and other serve processes. SIGTERM or Ctrl-C: finish requests, exit 0.\n"
               "Examples:\n  llmctl serve\n"
               "  OPENAI_BASE_URL=http://127.0.0.1:8080/v1 my-app\n"
               "  KEY=secret llmctl serve --listen 0.0.0.0:8080 --api-key-env KEY\n");
    return [o, &g]() -> int { return run(*o, g); };
}

} // namespace llmctl::cli
