#pragma once

#include "state.hpp"

#include <sys/types.h>

namespace mock {

// Sets SIGPIPE (a vanished client must not kill us) and, with --ignore-sigterm, SIGTERM to SIG_IGN.
// Runs before forking so children inherit the SIGTERM disposition.
void set_early_signal_dispositions(const Options& options);

// Forks n children that only sleep in the same process group; must run before any thread exists.
void fork_sleeping_children(int n);

// Forks one sleeping child that has left our session and process group (setsid) by the time this returns.
pid_t fork_escaped_child();

// Reaps children automatically so killed ones do not linger as zombies while we run.
void reap_children_automatically();

// Blocks SIGTERM/SIGINT in every thread started after this call and handles them on a dedicated
// sigwait thread, so exit is prompt even while other threads sit in accept() or read().
void start_signal_thread(ServerState& state);

// Marks the model loaded (and logs "model loaded") once the startup delay has passed.
void start_loader(ServerState& state);

// Exits 0 after the delay; used by tests so a forgotten server cleans itself up.
void start_exit_timer(Duration delay);

// Raises `sig` after `delay` (--crash-after).
void start_crash_timer(Duration delay, int sig);

// Logs `why` and raises `sig` (default action), now.
[[noreturn]] void crash_now(int sig, const char* why);

// Allocates --hold-memory's bytes and writes to every page of them, so they count in the process's
// RSS; kept until exit. False (errno set) when the memory cannot be had.
bool hold_memory(std::uint64_t bytes);

// Writes the --log-spam bytes on a background thread while serving continues.
void start_log_spam(std::uint64_t bytes);

} // namespace mock
