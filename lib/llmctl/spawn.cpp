#include "llmctl/spawn.hpp"

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
#include <sys/syscall.h>
#include <fmt/format.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace llmctl {

namespace bp = boost::process::v2;

namespace {

// Runs last in the child: puts it in a session of its own (pgid = sid = pid) so that the
// group can be found and signalled without touching the invoking shell, waits at the gate, and
// closes every fd above stderr (the gate's included). Boost 1.81's close_all skips the fds
// between 2 and its first whitelisted fd (it compares whitelist[idx] with itself), so a
// non-CLOEXEC fd of ours would leak into the server; close_range here does it right.
struct GateAndNewSession {
    int gate_read = -1;
    int gate_write = -1;
    std::string cwd;

    template <class Launcher>
    boost::system::error_code on_exec_setup(Launcher& launcher, const bp::filesystem::path&, const char* const*) {
        if (::setsid() < 0) return {errno, boost::system::system_category()};
        ::close(gate_write); // else the child would hold the gate open itself
        char go = 0;
        ssize_t n;
        while ((n = ::read(gate_read, &go, 1)) < 0 && errno == EINTR) {}
        if (n != 1 || go != 'g') ::_exit(127); // the start died before committing its row
        std::vector<int> keep = launcher.fd_whitelist;
        std::sort(keep.begin(), keep.end());
        unsigned int next = 3;
        for (int fd : keep) {
            if (fd < 3) continue;
            if (static_cast<unsigned int>(fd) > next) ::syscall(SYS_close_range, next, static_cast<unsigned int>(fd) - 1, 0u);
            next = std::max(next, static_cast<unsigned int>(fd) + 1);
        }
        ::syscall(SYS_close_range, next, ~0u, 0u);
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

    std::vector<std::string> args(req.argv.begin() + 1, req.argv.end());
    boost::asio::io_context ctx;
    boost::system::error_code ec;
    std::string cwd = req.cwd.empty() ? bp::filesystem::current_path().string() : req.cwd;
    // fork-and-forget: the default launcher would wait for the exec, which the gate holds back.
    bp::process proc = bp::posix::fork_and_forget_launcher()(
        ctx.get_executor(), ec, exe, args, bp::process_stdio{nullptr, log.get(), log.get()}, bp::process_environment(env),
        bp::process_start_dir(cwd), GateAndNewSession{gate_read.get(), gate_write.get(), cwd});
    if (ec) throw Error(Exit::server, fmt::format("cannot start {}: {}", req.argv[0], ec.message()));
    pid_t pid = proc.id();
    proc.detach(); // the caller owns the server's lifetime from here on
    GatedSpawn out;
    out.gate = std::move(gate_write);
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
