#pragma once
// Signals this process catches instead of dying of them: every sigaction(2) of llmctl is here.
// A handler only sets a flag (a volatile sig_atomic_t, or a lock-free atomic) or passes the
// signal on with kill(2), so each is async-signal-safe; the rest of the code polls the flags.

#include <sys/types.h>

namespace llmctl {

// From now on SIGINT sets a flag instead of killing the process.
void catch_sigint();
// True once a SIGINT was caught (since the last clear_sigint).
bool sigint_received();
// Forgets a SIGINT caught so far.
void clear_sigint();

// From now on SIGINT, SIGTERM and SIGHUP set the cancel signal instead of killing the process.
void catch_cancel();
// The signal that cancelled (the last one caught), 0 while none came.
int cancel_signal();
// How many cancel signals were caught (a second Ctrl-C while draining means "now").
int cancel_count();

// From now on SIGHUP sets a flag instead of killing or cancelling (a daemon's "reload", for
// `llmctl serve`); call after catch_cancel.
void catch_sighup();
// True when a SIGHUP came since the last call.
bool take_sighup();

// From now on SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 that someone sent with
// kill(2) are passed on to the forwarding target (SA_RESTART). One from the terminal (si_code
// SI_KERNEL) is not: it already reached the target when that shares our process group.
void forward_signals();
// The process forwarded signals go to; 0 for none (they are then dropped).
void set_forward_target(pid_t pid);

} // namespace llmctl
