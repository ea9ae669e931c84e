#include "llmctl/spawn.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/fd.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/start_dir.hpp>
#include <boost/process/v2/stdio.hpp>
#include <algorithm>
#include <fcntl.h>
#include <sys/syscall.h>
#include <fmt/format.h>
#include <unistd.h>

extern char** environ;

namespace llmctl {

namespace bp = boost::process::v2;

namespace {

// Runs last in the child: puts it in a session of its own (pgid = sid = pid) so that the
// group can be found and signalled without touching the invoking shell, and closes every fd
// above stderr except the launcher's own. Boost 1.81's close_all skips the fds between 2
// and its exec-error pipe (it compares whitelist[idx] with itself), so a non-CLOEXEC fd of
// ours would leak into the server.
struct NewSessionNoFds {
    template <class Launcher>
    boost::system::error_code on_exec_setup(Launcher& launcher, const bp::filesystem::path&, const char* const*) {
        if (::setsid() < 0) return {errno, boost::system::system_category()};
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
};

} // namespace

int open_log_for_append(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) throw_sys("open", path, errno);
    return fd;
}

Identity spawn_server(const SpawnRequest& req) {
    if (req.argv.empty() || req.argv[0].empty()) throw Error(Exit::server, "empty command");
    bp::filesystem::path exe = req.argv[0];
    if (req.argv[0].find('/') == std::string::npos) {
        exe = bp::environment::find_executable(req.argv[0]);
        if (exe.empty())
            throw Error(Exit::server, fmt::format("cannot run \"{}\": not found in PATH", req.argv[0]),
                        "install it, or give its absolute path in the model's command");
    } else if (::access(exe.c_str(), X_OK) != 0) {
        throw Error(Exit::server, fmt::format("cannot run {}", sys_message("access", req.argv[0], errno)));
    }
    Fd log(open_log_for_append(req.log_path));

    std::map<std::string, std::string> merged;
    for (char** e = environ; *e; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (auto& [k, v] : req.env) merged[k] = v;
    std::vector<std::string> env;
    for (auto& [k, v] : merged) env.push_back(k + "=" + v);

    std::vector<std::string> args(req.argv.begin() + 1, req.argv.end());
    boost::asio::io_context ctx;
    boost::system::error_code ec;
    std::string cwd = req.cwd.empty() ? bp::filesystem::current_path().string() : req.cwd;
    bp::process proc(ctx.get_executor(), exe, args, ec, bp::process_stdio{nullptr, log.get(), log.get()},
                     bp::process_environment(env), bp::process_start_dir(cwd), NewSessionNoFds{});
    if (ec) throw Error(Exit::server, fmt::format("cannot start {}: {}", req.argv[0], ec.message()));
    pid_t pid = proc.id();
    proc.detach(); // the caller owns the server's lifetime from here on
    auto id = identity_of(pid);
    if (!id) return Identity{pid, 0, boot_id()}; // already gone: callers see it as dead
    return *id;
}

} // namespace llmctl
