// `llmctl monitor-exit` (hidden): what llmctl-monitor becomes once its server exited. Its output
// goes to the server's log.

#include "commands.hpp"

#include "llmctl/paths.hpp"
#include "llmctl/server_exit.hpp"

#include <ctime>
#include <fmt/format.h>
#include <iostream>

namespace llmctl::cli {

namespace {

// A line for the server's log, as the start marker is written: "--- llmctl: … ---".
void log_note(const std::string& what) {
    std::time_t t = std::time(nullptr);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %z", std::localtime(&t));
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

} // namespace llmctl::cli
