// `llmctl monitor-exit` and `llmctl probe` (hidden): what llmctl-monitor becomes once its server
// exited, and the prober it runs beside the server. Their output goes to the server's log.

#include "commands.hpp"

#include "llmctl/clock_text.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/prober.hpp"
#include "llmctl/server_exit.hpp"

#include <ctime>
#include <fmt/format.h>
#include <iostream>

namespace llmctl::cli {

namespace {

// A line for the server's log, as the start marker is written: "--- llmctl: … ---".
void log_note(const std::string& what) {
    const std::string when = clock_text(std::time(nullptr), Zone::local, k_log_marker_time);
    std::cerr << fmt::format("--- llmctl: {} at {} ---\n", what, when) << std::flush;
}

} // namespace

std::function<int()> setup_monitor_exit(CLI::App& app, Globals& g) {
    auto x = std::make_shared<ServerExit>();
    app.add_option("NAME", x->name)->required();
    app.add_option("--instance", x->instance)->required();
    app.add_option("--pid", x->pid)->required();
    app.add_option("--wait-status", x->wait_status)->required();
    app.add_option("--oom-kills", x->oom_kills);
    app.add_option("--at", x->at)->required();
    app.add_option("--origin", x->origin);
    return [x, &g] {
        x->state_dir = resolve_state_dir(g.state_dir);
        handle_server_exit(*x, log_note);
        return 0;
    };
}

std::function<int()> setup_probe(CLI::App& app, Globals& g) {
    struct Opts {
        std::string name, instance, spec;
        pid_t pid = 0;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("NAME", o->name)->required();
    app.add_option("--instance", o->instance)->required();
    app.add_option("--pid", o->pid)->required();
    app.add_option("--spec", o->spec)->required();
    return [o, &g] {
        ProbeSpec spec = parse_probe_spec(o->spec);
        auto server = identity_of(o->pid);
        if (!server) return 0; // it is gone already: nothing to probe
        run_prober(resolve_state_dir(g.state_dir), o->name, o->instance, *server, spec, log_note);
        return 0;
    };
}

} // namespace llmctl::cli
