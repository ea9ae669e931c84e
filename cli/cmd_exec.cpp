// llmctl exec NAME [--keep] -- CMD ARGS...: run CMD against a running NAME (the CI primitive).
//
// NAME is started if needed (start semantics), CMD runs with LLMCTL_URL, OPENAI_BASE_URL and
// LLMCTL_PORT set, signals sent to exec with kill(1) are passed on (terminal signals reach CMD
// directly: it stays in exec's process group, so it can use the terminal), and CMD gets SIGTERM
// if exec dies (PR_SET_PDEATHSIG). When CMD ends, a server this exec started is stopped (with
// the drain) unless --keep was given or another exec still uses it. exec exits with CMD's
// status (128+N when a signal N ended it); its own failures are 125, 126/127 when CMD cannot run.

#include "commands.hpp"
#include "output.hpp"
#include "progress.hpp"

#include "llmctl/caught_signals.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/exec_command.hpp"
#include "llmctl/exec_users.hpp"
#include "llmctl/lookup.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/strings.hpp"
#include "llmctl/supervisor.hpp"

#include <cstring>
#include <fmt/format.h>
#include <iostream>

namespace llmctl::cli {

namespace {

constexpr int k_exec_failed = static_cast<int>(Exit::exec_failed);

struct Opts {
    std::string name;
    bool keep = false;
    std::vector<std::string> command;
};

// This exec is done with the server: its row goes and, when the duty to stop the server falls to
// it (it spawned the server, and no other exec uses it), the server is stopped.
void leave(const std::string& dir, const ModelConfig& m, const ExecUser& user, Millis drain, Globals& g, const std::string& why) {
    if (!user.id || !leave_exec_user(dir, user.id)) return;
    if (g.verbosity > 0) std::cerr << fmt::format("llmctl: exec: stopping {}, which this exec started\n", m.name);
    auto r = stop_server(dir, m.name, m.stop_timeout, drain, notifier(g), "stopped", why,
                         [inst = user.instance](Store&, const ServerRow& row) { return row.instance == inst && row.status != "failed"; });
    if (!r.unrecorded.empty()) std::cerr << fmt::format("llmctl: warning: exec: {} stopped, but not recorded: {}\n", m.name, r.unrecorded);
}

int run(const Opts& o, Globals& g) {
    Config cfg = load_config(g.config_path);
    if (o.command.empty()) throw Error(Exit::usage, "exec needs a command after --", "llmctl exec NAME -- CMD ARGS...");
    std::string dir = resolve_state_dir(g.state_dir);
    auto found = find_model(cfg, dir, o.name);
    if (!found)
        throw Error(Exit::unknown,
                    fmt::format("unknown model \"{}\" in {}{}", o.name, cfg.source, did_you_mean_suffix(o.name, cfg.model_names())),
                    "list models with: llmctl config check");
    const ModelConfig m = *found;

    // CMD is looked up before anything starts: a typo costs no server start.
    FoundCommand cmd = find_command(o.command[0]);
    if (cmd.status != 0) {
        print_error(fmt::format("exec: {}: {}", o.command[0], cmd.error));
        return cmd.status;
    }
    std::vector<std::string> args(o.command.begin() + 1, o.command.end());
    if (m.external()) { // nothing to start or stop: CMD gets its url (and key)
        auto env = external_environment(m);
        std::cerr << unverified_tls_warning(m);
        CommandResult ran = run_command(cmd.path, args, env);
        if (!ran.error.empty()) print_error(fmt::format("exec: cannot run {}: {}", o.command[0], ran.error));
        return ran.status;
    }

    // Ensure NAME runs. This exec is its user from the start's first decision on (spawning it,
    // waiting for another start of it, or finding it running), so execs waiting for one start
    // share that server, and a cancelled exec never strands the one it spawned.
    ExecUser user;
    user.keep = o.keep;
    StartResult res;
    // Until CMD runs, SIGINT, SIGTERM and SIGHUP cancel exec: the start stops waiting and a server
    // this exec spawned is stopped before exec exits 128+N (a cancelled CI job strands nothing).
    catch_cancel();
    try {
        StartOptions so;
        so.config = &cfg;
        so.exec_user = &user;
        so.cancelled = [] { return cancel_signal() != 0; };
        StatusLine status(g.verbosity < 0);
        show_start_progress(so, status, g, m.name);
        res = start_server(dir, m, so);
    } catch (const Error&) {
        if (!cancel_signal()) {
            leave(dir, m, user, Millis(0), g, "its llmctl exec failed");
            throw;
        }
    }
    if (cancel_signal()) {
        int sig = cancel_signal();
        if (g.verbosity >= 0)
            std::cerr << fmt::format("llmctl: exec: got SIG{} before {} ran; leaving {}\n", sigabbrev_np(sig), o.command[0], m.name);
        leave(dir, m, user, Millis(0), g, fmt::format("its llmctl exec got SIG{}", sigabbrev_np(sig)));
        return 128 + sig;
    }
    bool started = !res.already_running;
    if (g.verbosity > 0) std::cerr << fmt::format("llmctl: exec: {} {} at {}\n", m.name, started ? "started" : "already running", res.url);

    CommandResult ran = run_command(cmd.path, args, server_environment(res.url, res.port));
    if (!ran.error.empty()) print_error(fmt::format("exec: cannot run {}: {}", o.command[0], ran.error));
    int rc = ran.status; // what exec exits with

    // CMD is done: leave, and stop the server if that falls to us (after its drain).
    try {
        leave(dir, m, user, m.drain_timeout, g, "its llmctl exec ended");
    } catch (const Error& e) {
        print_error(std::string("exec: ") + e.what(), e.hint());
        if (rc == 0) rc = k_exec_failed; // CMD succeeded, our clean-up did not
    }
    return rc;
}

} // namespace

std::function<int()> setup_exec(CLI::App& app, Globals& g) {
    auto o = std::make_shared<Opts>();
    app.add_option("name", o->name, "Model to run CMD against (started if needed)")->required()->type_name("NAME");
    app.add_flag("--keep", o->keep, "Leave the server running afterwards even if this exec started it");
    app.footer("CMD and its ARGS come after --. CMD sees LLMCTL_URL (http://HOST:PORT), OPENAI_BASE_URL\n"
               "(LLMCTL_URL/v1) and LLMCTL_PORT (for an external model: its url, and OPENAI_API_KEY from\n"
               "its api_key_env; nothing is started). A server this exec started is stopped when CMD\n"
               "ends, unless --keep or another exec still uses it; if exec is killed, CMD gets SIGTERM\n"
               "and the next reap stops that server.\n"
               "Exit status: CMD's (128+N after signal N); 125 exec failed, 126 CMD not executable,\n"
               "127 CMD not found.\n"
               "Examples:\n  llmctl exec tiny -- pytest tests/smoke\n"
               "  llmctl exec echo -- sh -c 'curl -s \"$OPENAI_BASE_URL/models\"'\n"
               "  llmctl exec --keep echo -- ./warm-cache.sh\n");
    return [o, &g]() -> int {
        if (g.after_dashdash) o->command = *g.after_dashdash;
        return run(*o, g); // its failures: 125, by main's one catch (Command::own_failure)
    };
}

} // namespace llmctl::cli
