#pragma once
// The state lock: flock(2) on state.lock with a timeout. The kernel drops it when the
// holder dies, even by SIGKILL, so there is never a stale lock to clean up.

#include "llmctl/fd.hpp"
#include "llmctl/units.hpp"

#include <chrono>
#include <string>

namespace llmctl {

class FileLock {
public:
    // Takes the lock, polling with backoff until `timeout`; throws Error(timeout) naming
    // the holder's PID (written into the file while held). The fd is O_CLOEXEC so that
    // no spawned server can inherit the lock.
    [[nodiscard]] static FileLock acquire(const std::string& path, Millis timeout);

    FileLock(FileLock&&) noexcept = default;
    FileLock& operator=(FileLock&&) noexcept = default;
    ~FileLock();

    // Releases early (the destructor does it otherwise).
    void release();

    // How long the lock has been held, for instrumentation.
    std::chrono::steady_clock::duration held_for() const { return std::chrono::steady_clock::now() - since_; }

private:
    FileLock(Fd fd) : fd_(std::move(fd)), since_(std::chrono::steady_clock::now()) {}
    Fd fd_;
    std::chrono::steady_clock::time_point since_;
};

// The lock timeout: $LLMCTL_LOCK_TIMEOUT (a duration) or 30 s.
Millis lock_timeout();

} // namespace llmctl
