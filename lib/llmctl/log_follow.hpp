#pragma once
// `logs -f`: logs followed as they grow, each read as one stream across rotations and
// truncations (LogStream, with the seqlock on the offset sidecar). What is new is handed to a
// sink as it comes; printing it (raw, or with "NAME | " prefixes) is the caller's.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace llmctl {

// One followed log: its absolute position counts bytes since the log began, rotations included.
struct FollowedLog {
    FollowedLog(std::string n, std::string p) : name(std::move(n)), path(std::move(p)) {}
    std::string name, path;
    ino_t ino = 0; // the live file's inode: another one means the file was replaced
    std::uint64_t abs = 0;
};

// Receives new output of the log `name`; `width` is the longest followed name (to align prefixes).
using LogSink = std::function<void(const std::string& name, std::string_view data, std::size_t width)>;

// The length of the longest name among `logs`.
std::size_t widest_name(const std::vector<FollowedLog>& logs);

// Hands what is new in `log` to `sink` (at most 100 MiB a call, so other logs get their turn).
void poll_log(FollowedLog& log, std::size_t width, const LogSink& sink);

// Why following stopped.
enum class FollowEnd { interrupted, closed };

// Sleeps 100 ms, waking for a closed `fd` (POLLERR) or SIGINT; why to stop, if it is time to
// (every follower's pause: logs -f, events -f).
std::optional<FollowEnd> pause_between_polls(int fd);

// Follows `logs` until SIGINT (interrupted) or `watched_fd` closes (closed: POLLERR/POLLHUP),
// looking every 100 ms; with `all`, a log that appears in `dir` meanwhile is followed from its
// beginning.
FollowEnd follow_logs(std::vector<FollowedLog>& logs, const std::string& dir, bool all, int watched_fd, const LogSink& sink);

} // namespace llmctl
