#pragma once
// The CMD of `llmctl exec`: looked up before anything starts, run as exec's child with the
// server's address in its environment, and its end made exec's exit status. CMD stays in exec's
// process group (it can use the terminal), gets SIGTERM when exec dies (PR_SET_PDEATHSIG), and
// signals sent to exec with kill(2) are passed on to it (caught_signals).

#include "llmctl/config.hpp"

#include <map>
#include <string>
#include <vector>

namespace llmctl {

// A CMD looked up: its path, or the exit status and reason why it cannot run.
struct FoundCommand {
    std::string path;
    int status = 0;    // 127 not found, 126 not executable, 0 when it can run
    std::string error; // why not ("command not found", strerror)
};

// Looks up `name` as a shell would (on PATH unless it holds a '/') and checks it is executable.
FoundCommand find_command(const std::string& name);

// LLMCTL_URL, OPENAI_BASE_URL (LLMCTL_URL/v1) and LLMCTL_PORT for a server at `url`, `port`.
std::map<std::string, std::string> server_environment(const std::string& url, int port);

// The same for an external model (its url, nothing to start): LLMCTL_URL, OPENAI_BASE_URL and
// LLMCTL_PORT from its url, and OPENAI_API_KEY from its api_key_env ("" without one, never the
// caller's own; throws Error(config) when that variable is not set).
std::map<std::string, std::string> external_environment(const ModelConfig& m);

// How CMD ended, as exec's exit status; `error` says why it could not be started (126/127).
struct CommandResult {
    int status = 0;
    std::string error;
};

// Runs `path` with `args` in this process's environment plus `extra_env`, forwarding signals
// to it, and waits for it.
CommandResult run_command(const std::string& path, const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& extra_env);

// A waitpid(2) status as an exit status: the exit code, 128+N after signal N, else 125.
int exit_status_of(int wait_status);

} // namespace llmctl
