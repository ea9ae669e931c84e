#include "llmctl/spawn.hpp"

#include "llmctl/close_fds.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/fd.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/posix/fork_and_forget_launcher.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/start_dir.hpp>
#include <boost/process/v2/stdio.hpp>
#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fmt/format.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace llmctl {

namespace bp = boost::process::v2;

namespace {

// What the monitor is exec'd with, prepared before the fork (the child may not allocate): its
// argv has a slot for the server's pid, written in the child once it is known.
struct MonitorLaunch {
    std::string program;
    std::vector<std::string> args; // args[5] is the pid slot's placeholder
    std::vector<std::string> env;
    std::vector<char*> argv, envp;
    char pid_slot[24] = {};
    int report_write = -1; // the monitor's and the server's pids, for the parent

    explicit MonitorLaunch(const MonitorSpec& m) : program(m.program) {
        args = {m.program, m.llmctl, m.state_dir, m.name, m.instance, "", m.origin};
        if (!m.probe.empty()) args.push_back(m.probe);
        // The monitor carries none of llmctl's markers: it is never taken for its server.
        for (auto& kv : environment_with({}))
            if (!kv.starts_with("LLMCTL_INSTANCE=") && !kv.starts_with("LLMCTL_NAME=") && !kv.starts_with("LLMCTL_HOME=") &&
                !kv.starts_with("LLMCTL_PORT=") && !kv.starts_with("LLMCTL_HOST=") && !kv.starts_with("LLMCTL_FAULT"))
                env.push_back(kv);
        for (auto& a : args) argv.push_back(a.data());
        argv[5] = pid_slot;
        argv.push_back(nullptr);
        for (auto& e : env) envp.push_back(e.data());
        envp.push_back(nullptr);
    }
};

// Async-signal-safe: the decimal digits of a pid into `out` (24 bytes).
void format_pid(pid_t pid, char* out) {
    char digits[24];
    int n = 0;
    unsigned long v = static_cast<unsigned long>(pid);
    do digits[n++] = static_cast<char>('0' + v % 10);
    while ((v /= 10) && n < 23);
    for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
    out[n] = 0;
}

// Blocks until the gate says go ('g'); false when it closed without (the start died).
bool wait_at_gate(int fd) {
    char go = 0;
    ssize_t n;
    while ((n = ::read(fd, &go, 1)) < 0 && errno == EINTR) {}
    return n == 1 && go == 'g';
}

// The monitor's side of the fork (see spawn_gated): reports both pids, waits at the gate, lets
// the server go, and becomes llmctl-monitor. Never returns.
[[noreturn]] void run_as_monitor(MonitorLaunch& mon, pid_t server, int gate_read, int server_gate) {
    pid_t both[2] = {::getpid(), server};
    (void)!::write(mon.report_write, both, sizeof both);
    ::close(mon.report_write);
    if (!wait_at_gate(gate_read)) { // the start died before committing: the server never runs
        ::close(server_gate);
        while (::waitpid(server, nullptr, 0) < 0 && errno == EINTR) {}
        ::_exit(127);
    }
    (void)!::write(server_gate, "g", 1);
    format_pid(server, mon.pid_slot);
    close_fds(3);
    ::execve(mon.program.c_str(), mon.argv.data(), mon.envp.data());
    const char msg[] = "llmctl: cannot run llmctl-monitor: this server's exit will not be recorded\n";
    (void)!::write(2, msg, sizeof msg - 1);
    while (::waitpid(server, nullptr, 0) < 0 && errno == EINTR) {} // still its parent: reap it
    ::_exit(127);
}

// Runs last in the child: puts it in a session of its own (pgid = sid = pid) so that the
// group can be found and signalled without touching the invoking shell, waits at the gate, and
// closes every fd above stderr (the gate's included). Boost 1.81's close_all skips the fds
// between 2 and its first whitelisted fd (it compares whitelist[idx] with itself), so a
// non-CLOEXEC fd of ours would leak into the server; close_all_but_whitelist does it right.
// With a monitor, the child forks twice first (spawn_gated): only the server returns from here.
struct GateAndNewSession {
    int gate_read = -1;
    int gate_write = -1;
    std::string cwd;
    MonitorLaunch* monitor = nullptr;

    template <class Launcher>
    boost::system::error_code on_exec_setup(Launcher& launcher, const bp::filesystem::path&, const char* const*) {
        int gate = gate_read;
        if (monitor) {
            if (pid_t m = ::fork(); m != 0) ::_exit(m < 0 ? 127 : 0); // the middle child: done
            ::setsid();                                               // the monitor's session: no terminal's signals reach it
            int fds[2];
            if (::pipe2(fds, O_CLOEXEC) != 0) ::_exit(127);
            pid_t server = ::fork();
            if (server < 0) ::_exit(127);
            if (server > 0) {
                ::close(gate_write);
                ::close(fds[0]);
                run_as_monitor(*monitor, server, gate_read, fds[1]);
            }
            ::close(monitor->report_write);
            ::close(fds[1]);
            ::close(gate_read);
            gate = fds[0]; // the server waits for its monitor, which waits for the start
        }
        if (::setsid() < 0) return {errno, boost::system::system_category()};
        ::close(gate_write);                   // else the child would hold the gate open itself
        if (!wait_at_gate(gate)) ::_exit(127); // the start died before committing its row
        close_all_but_whitelist(launcher);
        return {};
    }
    // The fork-and-forget launcher reports nothing to the parent: say it in the log (stderr). The
    // error may be the chdir to the cwd as well as the exec (the parent checked both before).
    template <class Launcher>
    void on_exec_error(Launcher&, const bp::filesystem::path& exe, const char* const*, const std::error_code& ec) {
        std::string msg = "llmctl: cannot start " + exe.string() + " in " + cwd + ": " + ec.message() + "\n";
        (void)!::write(2, msg.data(), msg.size());
        ::_exit(127);
    }
};

} // namespace

std::vector<std::string> environment_with(const std::map<std::string, std::string>& extra) {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (auto& [k, v] : extra) env[k] = v;
    std::vector<std::string> list;
    for (auto& [k, v] : env) list.push_back(k + "=" + v);
    return list;
}

int open_log_for_append(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) throw_sys("open", path, errno);
    return fd;
}

namespace {

// The parent's side of a monitored spawn: the middle child's exit is collected, the monitor's
// and the server's pids read from the report pipe. Returns the server's pid.
pid_t read_monitor_report(pid_t middle, Fd& report_read, Fd& report_write, Identity& monitor) {
    report_write.reset();
    pid_t both[2] = {0, 0};
    std::size_t got = 0;
    while (got < sizeof both) {
        ssize_t n = ::read(report_read.get(), reinterpret_cast<char*>(both) + got, sizeof both - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    while (::waitpid(middle, nullptr, 0) < 0 && errno == EINTR) {} // ECHILD: serve reaped it already
    if (got != sizeof both) throw Error(Exit::server, "cannot start the server's monitor (fork failed)", "see the server's log");
    auto m = identity_of(both[0]);
    monitor = m ? *m : Identity{both[0], 0, boot_id()};
    return both[1];
}

} // namespace

GatedSpawn spawn_gated(const SpawnRequest& req) {
    if (req.argv.empty() || req.argv[0].empty()) throw Error(Exit::server, "empty command");
    if (!req.cwd.empty()) {
        struct stat st {};
        if (::stat(req.cwd.c_str(), &st) != 0)
            throw Error(Exit::server, fmt::format("cannot start {}: its cwd {}: {}", req.argv[0], req.cwd, std::strerror(errno)),
                        "create the directory, or fix the model's cwd (a relative cwd is relative to the config file)");
        if (!S_ISDIR(st.st_mode))
            throw Error(Exit::server, fmt::format("cannot start {}: its cwd {} is not a directory", req.argv[0], req.cwd));
    }
    bp::filesystem::path exe = req.argv[0];
    // A relative command with a '/' ("./server", "bin/server") is relative to the cwd it runs in.
    if (exe.is_relative() && req.argv[0].find('/') != std::string::npos && !req.cwd.empty()) exe = bp::filesystem::path(req.cwd) / exe;
    if (req.argv[0].find('/') == std::string::npos) {
        exe = bp::environment::find_executable(req.argv[0]);
        if (exe.empty())
            throw Error(Exit::server, fmt::format("cannot run \"{}\": not found in PATH", req.argv[0]),
                        "install it, or give its absolute path in the model's command");
    } else if (::access(exe.c_str(), X_OK) != 0) {
        throw Error(Exit::server, fmt::format("cannot run {}", sys_message("access", exe.string(), errno)));
    }
    Fd log(open_log_for_append(req.log_path));

    std::vector<std::string> env = environment_with(req.env);

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_sys("pipe", "gate", errno);
    Fd gate_read(fds[0]), gate_write(fds[1]);

    std::optional<MonitorLaunch> monitor;
    Fd report_read, report_write;
    if (req.monitor) {
        if (::access(req.monitor->program.c_str(), X_OK) != 0)
            throw Error(Exit::failure, fmt::format("cannot run {}", sys_message("access", req.monitor->program, errno)),
                        "llmctl-monitor is installed beside llmctl (or in ../libexec/llmctl/): reinstall llmctl");
        if (::pipe2(fds, O_CLOEXEC) != 0) throw_sys("pipe", "monitor report", errno);
        report_read = Fd(fds[0]);
        report_write = Fd(fds[1]);
        monitor.emplace(*req.monitor);
        monitor->report_write = report_write.get();
    }

    std::vector<std::string> args(req.argv.begin() + 1, req.argv.end());
    boost::asio::io_context ctx;
    boost::system::error_code ec;
    std::string cwd = req.cwd.empty() ? bp::filesystem::current_path().string() : req.cwd;
    // fork-and-forget: the default launcher would wait for the exec, which the gate holds back.
    bp::process proc = bp::posix::fork_and_forget_launcher()(
        ctx.get_executor(), ec, exe, args, bp::process_stdio{nullptr, log.get(), log.get()}, bp::process_environment(env),
        bp::process_start_dir(cwd), GateAndNewSession{gate_read.get(), gate_write.get(), cwd, monitor ? &*monitor : nullptr});
    if (ec) throw Error(Exit::server, fmt::format("cannot start {}: {}", req.argv[0], ec.message()));
    pid_t pid = proc.id();
    proc.detach(); // the caller owns the server's lifetime from here on
    GatedSpawn out;
    out.gate = std::move(gate_write);
    if (monitor) pid = read_monitor_report(pid, report_read, report_write, out.monitor);
    auto id = identity_of(pid);
    out.id = id ? *id : Identity{pid, 0, boot_id()}; // already gone: callers see it as dead
    return out;
}

void GatedSpawn::open() {
    if (!gate.valid()) return;
    char go = 'g';
    (void)!::write(gate.get(), &go, 1); // a dead child cannot read it; the caller sees it dead
    gate.reset();
}

bool on_path(const std::string& program) { return !bp::environment::find_executable(program).empty(); }

std::optional<std::string> run_and_read(const std::vector<std::string>& argv, Millis timeout, std::size_t max_bytes) {
    if (argv.empty()) return std::nullopt;
    bp::filesystem::path exe = argv[0].find('/') == std::string::npos ? bp::environment::find_executable(argv[0]) : argv[0];
    if (exe.empty()) return std::nullopt;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
    Fd out_read(fds[0]), out_write(fds[1]);
    Fd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    boost::asio::io_context ctx;
    boost::system::error_code ec;
    bp::process proc = bp::default_process_launcher()(ctx.get_executor(), ec, exe, std::vector<std::string>(argv.begin() + 1, argv.end()),
                                                      bp::process_stdio{null.get(), out_write.get(), null.get()});
    if (ec) return std::nullopt;
    out_write.reset();
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (char buf[4096];;) {
        const auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now()).count();
        pollfd p{out_read.get(), POLLIN, 0};
        if (left <= 0) break;
        const int ready = ::poll(&p, 1, static_cast<int>(left));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) break;
        ssize_t n = ::read(out_read.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > max_bytes) break;
    }
    // Its output ended: it exits about now (a few polls), unless the time is up. (running() reaps
    // it once it has exited and keeps its exit code.)
    bool running = true;
    while (out.size() <= max_bytes && (running = proc.running(ec)) && !ec && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // Reaped by someone else (a process that waits for any child, as serve does): its pid may be
    // another's by now, so it is never signalled, and its exit code is unknown.
    if (ec) return std::nullopt;
    if (out.size() > max_bytes || running) { // too much, or timed out: ours, killed by its handle
        proc.terminate(ec);
        proc.wait(ec);
        return std::nullopt;
    }
    if (proc.exit_code() != 0) return std::nullopt;
    return out;
}

Identity spawn_server(const SpawnRequest& req) {
    auto s = spawn_gated(req);
    s.open();
    return s.id;
}

} // namespace llmctl
