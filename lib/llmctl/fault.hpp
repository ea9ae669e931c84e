#pragma once
// Fault injection for crash and lock tests; inert unless LLMCTL_FAULT is set.
//
// LLMCTL_FAULT is a comma-separated list of entries:
//   POINT:DURATION     sleep DURATION when reaching POINT      (e.g. hold-lock:5s)
//   crash-after:POINT  SIGKILL ourselves when reaching POINT   (e.g. crash-after:spawn)

#include <string_view>

namespace llmctl {

// Called at named points in the code; does nothing unless LLMCTL_FAULT names the point.
void fault_point(std::string_view point);

} // namespace llmctl
