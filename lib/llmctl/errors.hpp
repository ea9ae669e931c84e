#pragma once
// One error type carries a message and a stable exit code up to main().

#include <stdexcept>
#include <string>
#include <string_view>

namespace llmctl {

// Exit codes are a public contract (llmctl(1), EXIT STATUS): never change a meaning.
enum class Exit : int {
    ok = 0,
    failure = 1,          // generic failure, incl. an HTTP error answered by the server
    usage = 2,            // bad arguments; start/stop on an external model
    config = 3,           // config file error
    unknown = 4,          // unknown server or model
    server = 5,           // server failed to start, died, or is unhealthy
    timeout = 6,          // timed out waiting (lock, slot, health, stall)
    newer_state = 7,      // the state file was migrated by a newer llmctl (serve exits with it: restart the new binary)
    exec_failed = 125,    // exec: llmctl's own failure around CMD (like timeout(1) and env(1))
    cannot_execute = 126, // exec: CMD found but not executable
    not_found = 127,      // exec: CMD not found
    interrupted = 130     // SIGINT
};

// The error every library layer throws for an expected failure; main() prints it once.
class Error : public std::runtime_error {
public:
    Error(Exit code, std::string message, std::string hint = {})
        : std::runtime_error(std::move(message)), code_(code), hint_(std::move(hint)) {}
    Exit code() const noexcept { return code_; }
    const std::string& hint() const noexcept { return hint_; }

private:
    Exit code_;
    std::string hint_;
};

// A write to the state file failed (disk full, an I/O error, the file size limit): nothing of the
// transaction was recorded. Commands that can act from what they read (stop, reap) carry on and
// record the result when the disk allows; the rest report it (exit 1).
class StateWriteError : public Error {
public:
    StateWriteError(std::string message, std::string hint) : Error(Exit::failure, std::move(message), std::move(hint)) {}
};

// Formats `call("path"): strerror(errno)` from the current errno.
std::string sys_message(std::string_view call, std::string_view path, int err);

// Throws Error(failure) naming the system call, the path and errno.
[[noreturn]] void throw_sys(std::string_view call, std::string_view path, int err);

} // namespace llmctl
