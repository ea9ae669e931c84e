#pragma once
// Signals that can only reach the process whose identity was proven: pidfd_open, verify the
// start ticks through the pidfd's process, then pidfd_send_signal. A recycled PID is never hit.

#include "llmctl/process.hpp"

#include <chrono>
#include <vector>

namespace llmctl {

enum class SignalResult { sent, gone, mismatch, failed };

// Sends `sig` to the process with identity `id` only if that exact process is alive.
SignalResult signal_identity(const Identity& id, int sig);

// Waits until none of `procs` is alive (a zombie counts as gone) or `deadline` passes; true when
// all are gone. Sleeps in poll(2) on each process's pidfd, so it returns the moment the last one
// exits instead of on the next tick of a polling loop.
bool wait_gone(const std::vector<Identity>& procs, std::chrono::steady_clock::time_point deadline);

// signal_identity for each of `procs`.
void signal_all(const std::vector<Identity>& procs, int sig);

// SIGTERM to each of `procs`, up to `grace` for them to exit, then SIGKILL to those left (not
// waited for). True when all exited within the grace.
bool terminate_then_kill(const std::vector<Identity>& procs, std::chrono::milliseconds grace);

} // namespace llmctl
