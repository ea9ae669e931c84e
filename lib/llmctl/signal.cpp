#include "llmctl/signal.hpp"

#include "llmctl/fd.hpp"

#include <cerrno>
#include <csignal>
#include <sys/syscall.h>
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

} // namespace llmctl
