#pragma once
// Fault injection for crash and lock tests; inert unless LLMCTL_FAULT is set.
//
// LLMCTL_FAULT is a comma-separated list of entries:
//   POINT:DURATION     sleep DURATION when reaching POINT      (e.g. hold-lock:5s)
//   crash-after:POINT  SIGKILL ourselves when reaching POINT   (e.g. crash-after:spawn)
//   POINT:hold         wait at POINT until the file $LLMCTL_FAULT_NOTIFY.release exists (at most
//                      60 s), so a test acts while the invocation is there without guessing a time
// When LLMCTL_FAULT_NOTIFY names a file, a sleeping point first appends its name to it, so a
// test can poll for "the invocation is now inside POINT" instead of guessing with a sleep.

#include <string_view>

namespace llmctl {

// Called at named points in the code; does nothing unless LLMCTL_FAULT names the point.
void fault_point(std::string_view point);

} // namespace llmctl
