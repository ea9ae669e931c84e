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

#include "llmctl/errors.hpp"
#include "llmctl/exec_users.hpp"
#include "llmctl/lookup.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/strings.hpp"
#include "llmctl/supervisor.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/process/v2/default_launcher.hpp>
#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/process.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fmt/format.h>
#include <iostream>
#include <map>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace llmctl::cli {

namespace {

namespace bp = boost::process::v2;

constexpr int k_exec_failed = static_cast<int>(Exit::exec_failed);
constexpr int k_cannot_execute = static_cast<int>(Exit::cannot_execute);
constexpr int k_not_found = static_cast<int>(Exit::not_found);

volatile sig_atomic_t g_child = 0;
volatile sig_atomic_t g_cancel = 0; // a signal that ends exec before CMD runs

void on_cancel(int sig) { g_cancel = sig; }

// Until CMD runs, SIGINT, SIGTERM and SIGHUP cancel exec: the start stops waiting and a server
// this exec spawned is stopped before exec exits 128+N (a cancelled CI job strands nothing).
void catch_cancel() {
    struct sigaction sa {};
    sa.sa_handler = on_cancel;
    sigemptyset(&sa.sa_mask);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);
}

// Passed on: signals someone sent to exec with kill(2). A signal from the terminal (si_code
// SI_KERNEL) already reached CMD, which shares exec's process group: not sent twice.
void forward(int sig, siginfo_t* info, void*) {
    pid_t child = g_child;
    if (child > 0 && info && info->si_code != SI_KERNEL && info->si_pid != child) ::kill(child, sig);
}

const int k_forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

void install_forwarding() {
    struct sigaction sa {};
    sa.sa_sigaction = forward;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int s : k_forwarded) ::sigaction(s, &sa, nullptr);
}

// In the child, before exec: SIGTERM when exec dies, and not a moment of life if it already has.
struct DieWithParent {
    pid_t parent;
    template <class Launcher>
    boost::system::error_code on_exec_setup(Launcher&, const bp::filesystem::path&, const char* const*) {
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) ::_exit(k_exec_failed);
        // exec's handlers do not survive exec(2); restore the default mask and dispositions.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        return {};
    }
};

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
        throw Error(Exit::unknown, fmt::format("unknown model \"{}\" in {}{}", o.name, cfg.source, did_you_mean_suffix(o.name, cfg.model_names())),
                    "list models with: llmctl config check");
    const ModelConfig m = *found;
    if (m.external()) throw Error(Exit::usage, fmt::format("model \"{}\" is external ({}): use its url directly", m.name, m.url));

    // CMD is looked up before anything starts: a typo costs no server start.
    bp::filesystem::path exe = o.command[0];
    if (o.command[0].find('/') == std::string::npos) exe = bp::environment::find_executable(o.command[0]);
    if (exe.empty() || ::access(exe.c_str(), F_OK) != 0) {
        print_error(fmt::format("exec: {}: command not found", o.command[0]));
        return k_not_found;
    }
    if (::access(exe.c_str(), X_OK) != 0) {
        print_error(fmt::format("exec: {}: {}", o.command[0], std::strerror(errno)));
        return k_cannot_execute;
    }

    // Ensure NAME runs. This exec is its user from the start's first decision on (spawning it,
    // waiting for another start of it, or finding it running), so execs waiting for one start
    // share that server, and a cancelled exec never strands the one it spawned.
    ExecUser user;
    user.keep = o.keep;
    StartResult res;
    catch_cancel();
    try {
        StartOptions so;
        so.exec_user = &user;
        so.cancelled = [] { return g_cancel != 0; };
        StatusLine status(g.verbosity < 0);
        show_start_progress(so, status, g, m.name);
        res = start_server(dir, m, so);
    } catch (const Error&) {
        if (!g_cancel) {
            leave(dir, m, user, Millis(0), g, "its llmctl exec failed");
            throw;
        }
    }
    if (g_cancel) {
        int sig = g_cancel;
        if (g.verbosity >= 0) std::cerr << fmt::format("llmctl: exec: got SIG{} before {} ran; leaving {}\n", sigabbrev_np(sig), o.command[0], m.name);
        leave(dir, m, user, Millis(0), g, fmt::format("its llmctl exec got SIG{}", sigabbrev_np(sig)));
        return 128 + sig;
    }
    bool started = !res.already_running;
    if (g.verbosity > 0)
        std::cerr << fmt::format("llmctl: exec: {} {} at {}\n", m.name, started ? "started" : "already running", res.url);

    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    env["LLMCTL_URL"] = res.url;
    env["OPENAI_BASE_URL"] = res.url + "/v1";
    env["LLMCTL_PORT"] = std::to_string(res.port);
    std::vector<std::string> env_list;
    for (auto& [k, v] : env) env_list.push_back(k + "=" + v);

    install_forwarding();
    int rc = 0; // what exec exits with
    {
        boost::asio::io_context ctx;
        boost::system::error_code ec;
        std::vector<std::string> args(o.command.begin() + 1, o.command.end());
        bp::process proc = bp::default_process_launcher()(ctx.get_executor(), ec, exe, args, bp::process_environment(env_list),
                                                           DieWithParent{::getpid()});
        if (ec) {
            print_error(fmt::format("exec: cannot run {}: {}", o.command[0], ec.message()));
            rc = ec.value() == ENOENT ? k_not_found : k_cannot_execute;
        } else {
            pid_t pid = proc.id();
            proc.detach(); // waited for below, with the raw status (signals included)
            g_child = pid;
            int ws = 0;
            while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
            }
            g_child = 0;
            rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : k_exec_failed;
        }
    }

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
               "(LLMCTL_URL/v1) and LLMCTL_PORT. A server this exec started is stopped when CMD ends, unless\n"
               "--keep or another exec still uses it; if exec is killed, CMD gets SIGTERM and the next reap\n"
               "stops that server.\n"
               "Exit status: CMD's (128+N after signal N); 125 exec failed, 126 CMD not executable,\n"
               "127 CMD not found.\n"
               "Examples:\n  llmctl exec tiny -- pytest tests/smoke\n"
               "  llmctl exec echo -- sh -c 'curl -s \"$OPENAI_BASE_URL/models\"'\n"
               "  llmctl exec --keep echo -- ./warm-cache.sh\n");
    return [o, &g]() -> int {
        if (g.after_dashdash) o->command = *g.after_dashdash;
        try {
            return run(*o, g);
        } catch (const Error& e) {
            print_error(e);
            return k_exec_failed;
        } catch (const std::exception& e) {
            print_error(std::string("exec: ") + e.what());
            return k_exec_failed;
        }
    };
}

} // namespace llmctl::cli
