#pragma once
// The state lock: flock(2) on state.lock with a timeout. The kernel drops it when the
// holder dies, even by SIGKILL, so there is never a stale lock to clean up.

#include "llmctl/fd.hpp"
#include "llmctl/units.hpp"

#include <chrono>
#include <string>
#include <string_view>

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

private:
    FileLock(Fd fd, std::chrono::steady_clock::time_point asked);
    Fd fd_;
    std::chrono::steady_clock::time_point asked_; // when acquire() was called
    std::chrono::steady_clock::time_point since_; // when the lock was taken
    std::chrono::nanoseconds cpu_since_{};        // this process's CPU time when taken
};

// With LLMCTL_DEBUG=lock (a comma-separated list may name other topics too), every release of
// the state lock prints one line to stderr, for benchmarks and for finding a slow holder:
//   llmctl: debug: lock pid=123 wait_us=40 held_us=850 cpu_us=310
// cpu_us is the CPU time this process used while holding it (on a busy machine the wall hold
// time mostly measures preemption).
bool debug_enabled(std::string_view topic);

// The lock timeout: $LLMCTL_LOCK_TIMEOUT (a duration) or 30 s.
Millis lock_timeout();

} // namespace llmctl
