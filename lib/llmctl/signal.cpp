#include "llmctl/signal.hpp"

#include "llmctl/fd.hpp"

#include <cerrno>
#include <csignal>
#include <poll.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

namespace llmctl {

SignalResult signal_identity(const Identity& id, int sig) {
    if (id.pid <= 0) return SignalResult::mismatch;
    Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, id.pid, 0)));
    if (!pidfd.valid()) return errno == ESRCH ? SignalResult::gone : SignalResult::failed;
    // The pidfd pins the process it was opened on; if that process has the expected start
    // ticks now, it is the one we mean, and the signal below cannot reach a successor.
    if (!is_alive(id)) return identity_of(id.pid) ? SignalResult::mismatch : SignalResult::gone;
    if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) == 0) return SignalResult::sent;
    return errno == ESRCH ? SignalResult::gone : SignalResult::failed;
}

bool wait_gone(const std::vector<Identity>& procs, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        // One pidfd per process still alive; identity checked after opening, as above, so the
        // pidfd is known to be the process we mean.
        std::vector<Fd> fds;
        std::vector<pollfd> pfds;
        bool unwatched = false;
        for (const auto& p : procs) {
            if (!is_alive(p)) continue;
            Fd fd(static_cast<int>(::syscall(SYS_pidfd_open, p.pid, 0)));
            if (!fd.valid() || !is_alive(p)) {
                unwatched = unwatched || fd.valid() || errno != ESRCH;
                continue;
            }
            pfds.push_back({fd.get(), POLLIN, 0});
            fds.push_back(std::move(fd));
        }
        if (pfds.empty() && !unwatched) return true;
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return false;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
        if (unwatched) {
            // No pidfd (an old kernel or a race with the exit): a short sleep, then look again.
            std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long long>(left, 5)));
            continue;
        }
        // Readable = that process exited; wait for all of them, then look again.
        for (auto& pfd : pfds) {
            int rc;
            do {
                now = std::chrono::steady_clock::now();
                if (now >= deadline) return false;
                left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
                rc = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
            } while (rc < 0 && errno == EINTR);
            if (rc == 0) return false;
        }
    }
}

void signal_all(const std::vector<Identity>& procs, int sig) {
    for (const auto& p : procs) signal_identity(p, sig);
}

bool terminate_then_kill(const std::vector<Identity>& procs, std::chrono::milliseconds grace) {
    signal_all(procs, SIGTERM);
    if (wait_gone(procs, std::chrono::steady_clock::now() + grace)) return true;
    signal_all(procs, SIGKILL);
    return false;
}

} // namespace llmctl
