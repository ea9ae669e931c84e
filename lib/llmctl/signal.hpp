#pragma once
// Signals that can only reach the process whose identity was proven: pidfd_open, verify the
// start ticks through the pidfd's process, then pidfd_send_signal. A recycled PID is never hit.

#include "llmctl/process.hpp"

namespace llmctl {

enum class SignalResult { sent, gone, mismatch, failed };

// Sends `sig` to the process with identity `id` only if that exact process is alive.
SignalResult signal_identity(const Identity& id, int sig);

} // namespace llmctl
