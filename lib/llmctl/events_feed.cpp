#include "llmctl/events_feed.hpp"

#include "llmctl/caught_signals.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/store.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

namespace llmctl {

namespace {

std::vector<EventRow> read_events(Store& store, const EventQuery& q) {
    std::vector<EventRow> out;
    if (q.last && *q.last <= 0) return out;
    // Newest first, so that `last` is a LIMIT; reversed below.
    auto s = store.prepare("SELECT id, at, coalesce(server, ''), kind, coalesce(detail, '') FROM events "
                           "WHERE id > ? AND id <= ? AND at >= ? ORDER BY id DESC");
    s.bind(1, q.after_id);
    s.bind(2, q.up_to_id.value_or(INT64_MAX));
    s.bind(3, q.since.value_or(0));
    while (s.step()) {
        EventRow e{s.i64(0), s.i64(1), s.str(2), s.str(3), s.str(4)};
        if (!q.names.empty() && std::find(q.names.begin(), q.names.end(), e.server) == q.names.end()) continue;
        out.push_back(std::move(e));
        if (q.last && static_cast<int>(out.size()) >= *q.last) break;
    }
    std::reverse(out.begin(), out.end());
    return out;
}

} // namespace

std::vector<EventRow> read_events(const std::string& state_dir, const EventQuery& q) {
    auto store = Store::open_read(state_db_path(state_dir));
    return store ? read_events(*store, q) : std::vector<EventRow>{};
}

namespace {

std::int64_t newest_event_id(Store& store) {
    auto s = store.prepare("SELECT coalesce(max(id), 0) FROM events");
    return s.step() ? s.i64(0) : 0;
}

} // namespace

std::int64_t newest_event_id(const std::string& state_dir) {
    auto store = Store::open_read(state_db_path(state_dir));
    return store ? newest_event_id(*store) : 0;
}

FollowEnd follow_events(const std::string& state_dir, EventQuery q, int watched_fd, const std::function<void(const EventRow&)>& sink) {
    catch_sigint();
    auto emit = [&](const std::vector<EventRow>& rows) {
        for (const auto& e : rows) {
            sink(e);
            q.after_id = e.id;
        }
    };
    // What is recorded now (the query's filters and `last`), then what comes after it, read
    // through one connection: none printed twice or skipped, nor lost to a file replaced between
    // the two.
    std::optional<Store> store = Store::open_read(state_db_path(state_dir));
    if (store) {
        q.up_to_id = newest_event_id(*store);
        emit(read_events(*store, q));
        q.after_id = *q.up_to_id;
    }
    q.last.reset();
    q.up_to_id.reset();
    for (;;) {
        // A state file made anew (the old one moved aside as corrupt, or removed) numbers its
        // events from 1 again: every one of them is new. One a newer llmctl migrated in place is
        // refused, as a new open would refuse it.
        if (store && !store->still_current()) {
            store.reset();
            q.after_id = 0;
        }
        if (!store) store = Store::open_read(state_db_path(state_dir));
        if (store) {
            store->check_not_newer();
            emit(read_events(*store, q));
        }
        if (auto end = pause_between_polls(watched_fd)) return *end;
    }
}

} // namespace llmctl
