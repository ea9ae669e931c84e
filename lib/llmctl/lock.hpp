#pragma once
// The state lock: flock(2) on state.lock with a timeout. The kernel drops it when the
// holder dies, even by SIGKILL, so there is never a stale lock to clean up.

#include "llmctl/fd.hpp"
#include "llmctl/units.hpp"

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>

namespace llmctl {

class FileLock {
public:
    // Takes the lock, polling with backoff until `timeout`; throws Error(timeout) naming
    // the holder's PID (written into the file while held). The fd is O_CLOEXEC so that
    // no spawned server can inherit the lock. The threads of one process (serve's requests)
    // queue on a mutex first, so that only one of them at a time polls the file lock.
    [[nodiscard]] static FileLock acquire(const std::string& path, Millis timeout);

    // The first half of acquire, for a caller with work to do between the two (open_locked opens
    // the state file): this process's turn at the lock, then acquire_file for the lock itself.
    // Throws Error(timeout) like acquire.
    [[nodiscard]] static std::unique_lock<std::timed_mutex> queue_in_process(const std::string& path, Millis timeout);
    [[nodiscard]] static FileLock acquire_file(const std::string& path, Millis timeout, std::unique_lock<std::timed_mutex> turn);

    FileLock(FileLock&&) noexcept = default;
    FileLock& operator=(FileLock&&) noexcept = default;
    ~FileLock();

    // Releases early (the destructor does it otherwise).
    void release();

private:
    FileLock(std::unique_lock<std::timed_mutex> in_process, Fd fd, std::chrono::steady_clock::time_point asked);
    std::unique_lock<std::timed_mutex> in_process_;
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
