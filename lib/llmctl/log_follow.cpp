#include "llmctl/log_follow.hpp"

#include "llmctl/caught_signals.hpp"
#include "llmctl/log_stream.hpp"
#include "llmctl/logfile.hpp"
#include "llmctl/paths.hpp"

#include <algorithm>
#include <optional>
#include <poll.h>

namespace llmctl {

namespace {

// Adds the logs in `dir` not followed yet: servers started meanwhile, their whole log new.
void add_new_logs(std::vector<FollowedLog>& logs, const std::string& dir) {
    for (auto& n : logged_names(dir))
        if (std::none_of(logs.begin(), logs.end(), [&](auto& f) { return f.name == n; })) logs.emplace_back(n, log_path(dir, n));
}

} // namespace

std::optional<FollowEnd> pause_between_polls(int fd) {
    pollfd p{fd, 0, 0};
    ::poll(&p, 1, 100);
    if (sigint_received()) return FollowEnd::interrupted;
    if (p.revents & (POLLERR | POLLHUP)) return FollowEnd::closed;
    return std::nullopt;
}

std::size_t widest_name(const std::vector<FollowedLog>& logs) {
    std::size_t width = 0;
    for (auto& f : logs) width = std::max(width, f.name.size());
    return width;
}

// Seqlock on the offset sidecar: data read while a rotation ran is discarded and read again at
// its new place.
void poll_log(FollowedLog& f, std::size_t width, const LogSink& sink) {
    for (int round = 0; round < 100; ++round) { // at most 100 MiB per log and poll
        LogOffset o = read_offset(f.path);
        if (o.pending) return; // a rotation is moving the head: next poll
        LogStream stream(f.path, o.removed);
        if (!stream.valid()) return; // gone for now (deleted, renamed by hand)
        // Replaced, or truncated by something other than llmctl: all of it is new output.
        if (stream.live_inode() != f.ino || f.abs > stream.end()) f.abs = o.removed;
        std::uint64_t pos = f.abs;
        std::string data = stream.read(pos, 1 << 20);
        if (!(read_offset(f.path) == o)) continue; // rotated meanwhile: read again
        f.ino = stream.live_inode();
        if (data.empty()) return;
        f.abs = pos + data.size();
        sink(f.name, data, width);
    }
}

FollowEnd follow_logs(std::vector<FollowedLog>& logs, const std::string& dir, bool all, int watched_fd, const LogSink& sink) {
    catch_sigint();
    for (;;) {
        if (all) add_new_logs(logs, dir);
        std::size_t width = widest_name(logs);
        for (auto& f : logs) poll_log(f, width, sink);
        if (auto end = pause_between_polls(watched_fd)) return *end;
    }
}

} // namespace llmctl
