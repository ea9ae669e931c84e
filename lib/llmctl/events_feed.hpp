#pragma once
// `llmctl events` (issue 22): the events table (spawned, ready, evicted, restarted, wedged,
// lease_reclaimed, …) read without the state lock and without writing, once or followed.

#include "llmctl/log_follow.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace llmctl {

struct EventRow {
    std::int64_t id = 0;
    std::int64_t at = 0; // ms since the epoch
    std::string server, kind, detail;
};

// Which events: of these servers (none: all), at or after `since` (ms since the epoch), after
// the event `after_id` and up to `up_to_id`; of those, the last `last` (nullopt: all the table
// keeps).
struct EventQuery {
    std::vector<std::string> names;
    std::optional<std::int64_t> since;
    std::int64_t after_id = 0;
    std::optional<std::int64_t> up_to_id;
    std::optional<int> last;
};

// The id of the latest event (0: none yet): what a follower starts after.
std::int64_t newest_event_id(const std::string& state_dir);

// The events that match, oldest first; none when there is no state file yet.
std::vector<EventRow> read_events(const std::string& state_dir, const EventQuery& q);

// Hands `sink` the matching events recorded now (q's filters and `last`), then each new one as it
// is recorded (looking every 100 ms), until SIGINT (interrupted) or `watched_fd` closes (closed).
// A state file made anew meanwhile (moved aside as corrupt, removed) is followed from its first
// event; one a newer llmctl migrated throws Error(newer_state).
FollowEnd follow_events(const std::string& state_dir, EventQuery q, int watched_fd, const std::function<void(const EventRow&)>& sink);

} // namespace llmctl
