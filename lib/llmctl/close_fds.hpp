#pragma once
// Closing the descriptors a child must not inherit, after fork and before exec (async-signal-safe:
// no allocation). close_range(2) where the kernel has it (Linux 5.9+); else one close per
// descriptor up to the process's limit.

#include <algorithm>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace llmctl {

// Closes every descriptor from `first` to `last` (inclusive; ~0u: all).
inline void close_fds(unsigned int first, unsigned int last = ~0u) {
    if (first > last) return;
    if (::syscall(SYS_close_range, first, last, 0u) == 0) return;
    rlimit lim{};
    const unsigned int top = ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY
                                 ? static_cast<unsigned int>(std::min<rlim_t>(lim.rlim_cur, 1u << 20))
                                 : 1u << 16;
    for (unsigned int fd = first; fd <= last && fd < top; ++fd) ::close(static_cast<int>(fd));
}

// Closes every descriptor above stderr but those a Boost.Process launcher keeps for the exec (its
// whitelist: the pipe that reports a failed exec). In on_exec_setup; allocates nothing (the
// whitelist is read as it is, unsorted).
template <class Launcher>
void close_all_but_whitelist(const Launcher& launcher) {
    unsigned int next = 3;
    for (;;) {
        unsigned int kept = ~0u; // the lowest whitelisted descriptor from `next` on
        for (int fd : launcher.fd_whitelist)
            if (fd >= 0 && static_cast<unsigned int>(fd) >= next) kept = std::min(kept, static_cast<unsigned int>(fd));
        if (kept == ~0u) return close_fds(next);
        if (kept > next) close_fds(next, kept - 1);
        next = kept + 1;
    }
}

} // namespace llmctl
