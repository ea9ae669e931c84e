#include "llmctl/exec_command.hpp"

#include "llmctl/caught_signals.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/spawn.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/process/v2/default_launcher.hpp>
#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/process.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace llmctl {

namespace {

namespace bp = boost::process::v2;

constexpr int k_exec_failed = static_cast<int>(Exit::exec_failed);
constexpr int k_cannot_execute = static_cast<int>(Exit::cannot_execute);
constexpr int k_not_found = static_cast<int>(Exit::not_found);

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

// Waits for `pid` (signals passed on meanwhile) and returns its raw wait status.
int wait_forwarding(pid_t pid) {
    set_forward_target(pid);
    int ws = 0;
    while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    set_forward_target(0);
    return ws;
}

} // namespace

FoundCommand find_command(const std::string& name) {
    bp::filesystem::path exe = name;
    if (name.find('/') == std::string::npos) exe = bp::environment::find_executable(name);
    if (exe.empty() || ::access(exe.c_str(), F_OK) != 0) return {{}, k_not_found, "command not found"};
    if (::access(exe.c_str(), X_OK) != 0) return {{}, k_cannot_execute, std::strerror(errno)};
    return {exe.string(), 0, {}};
}

std::map<std::string, std::string> server_environment(const std::string& url, int port) {
    return {{"LLMCTL_URL", url}, {"OPENAI_BASE_URL", url + "/v1"}, {"LLMCTL_PORT", std::to_string(port)}};
}

std::map<std::string, std::string> external_environment(const ModelConfig& m) {
    auto env = server_environment(m.url, parse_url(m.url).port);
    // Always set, empty without api_key_env: a key of the caller's own (an OpenAI one in the
    // shell) must not go to this model's server, which OPENAI_BASE_URL now names.
    env["OPENAI_API_KEY"] = external_api_key(m);
    return env;
}

CommandResult run_command(const std::string& path, const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& extra_env) {
    std::vector<std::string> env = environment_with(extra_env);
    forward_signals();
    boost::asio::io_context ctx;
    boost::system::error_code ec;
    bp::process proc = bp::default_process_launcher()(ctx.get_executor(), ec, bp::filesystem::path(path), args,
                                                      bp::process_environment(env), DieWithParent{::getpid()});
    if (ec) return {ec.value() == ENOENT ? k_not_found : k_cannot_execute, ec.message()};
    pid_t pid = proc.id();
    proc.detach(); // waited for here, with the raw status (signals included)
    return {exit_status_of(wait_forwarding(pid)), {}};
}

int exit_status_of(int wait_status) {
    if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
    return k_exec_failed;
}

} // namespace llmctl
