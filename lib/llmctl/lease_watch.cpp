#include "llmctl/lease_watch.hpp"

#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"

#include <chrono>
#include <optional>
#include <set>
#include <utility>

namespace llmctl {

namespace {

using clock = std::chrono::steady_clock;

std::int64_t data_version(Store& reader) {
    auto q = reader.prepare("PRAGMA data_version");
    return q.step() ? q.i64(0) : 0;
}

// True when an owner of a lease (another process's) died: its slot frees only by a reclaim.
bool an_owner_died(Store& reader) {
    auto q = reader.prepare("SELECT DISTINCT owner_pid, owner_start_ticks, owner_boot_id FROM leases");
    while (q.step())
        if (!is_alive(identity_at(q, 0))) return true;
    return false;
}

} // namespace

LeaseWatch::LeaseWatch(std::string state_dir) : dir_(std::move(state_dir)), thread_([this] { watch(); }) {}

LeaseWatch::~LeaseWatch() {
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    work_.notify_all();
    thread_.join();
}

void LeaseWatch::enroll(std::int64_t id, const SlotRequest& req) {
    {
        std::lock_guard<std::mutex> g(mu_);
        Waiting& w = waiting_[id];
        w.req = &req;
        w.worth_trying = false;
        newcomer_ = true;
    }
    work_.notify_one();
}

void LeaseWatch::leave(std::int64_t id) {
    std::lock_guard<std::mutex> g(mu_);
    waiting_.erase(id);
}

void LeaseWatch::poke() {
    {
        std::lock_guard<std::mutex> g(mu_);
        if (waiting_.empty()) return; // nobody to wake
        newcomer_ = true;
    }
    work_.notify_all();
}

bool LeaseWatch::wait(std::int64_t id, Millis at_most) {
    std::unique_lock<std::mutex> g(mu_);
    auto it = waiting_.find(id);
    if (it == waiting_.end()) return true;
    bool woken = it->second.woken.wait_for(g, at_most, [&] { return it->second.worth_trying || stop_; });
    it->second.worth_trying = false;
    return woken;
}

// The thread: while anyone waits, a look when the file changed (or, every 500 ms, when an owner
// may have died): every 10 ms within a second of the last change, every 25 ms after a quiet
// second (a thousand requests waiting on a long-held slot cost a thread's 100 wakes a second
// otherwise, most of their CPU).
void LeaseWatch::watch() {
    std::optional<Store> reader;
    std::int64_t seen_version = -1;
    auto last_liveness = clock::now(), last_cancel_check = clock::now(), last_change = clock::now();
    std::unique_lock<std::mutex> g(mu_);
    while (!stop_) {
        const auto step =
            clock::now() - last_change < std::chrono::seconds(1) ? std::chrono::milliseconds(10) : std::chrono::milliseconds(25);
        work_.wait_for(g, step, [&] { return stop_ || newcomer_; });
        bool newcomer = std::exchange(newcomer_, false); // (cleared even when nobody waits)
        if (stop_ || waiting_.empty()) continue;
        if (clock::now() - last_cancel_check >= std::chrono::seconds(1)) {
            last_cancel_check = clock::now();
            wake_the_cancelled();
        }
        g.unlock();
        try {
            const bool liveness_due = clock::now() - last_liveness >= std::chrono::milliseconds(500);
            if (!reader || (liveness_due && !reader->still_current()))
                reader = Store::open_read(state_db_path(dir_)); // (a rebuild replaces the file)
            if (reader) {
                std::int64_t v = data_version(*reader);
                bool changed = v != seen_version || newcomer;
                seen_version = v;
                if (changed) last_change = clock::now();
                if (!changed && liveness_due) {
                    last_liveness = clock::now();
                    changed = an_owner_died(*reader);
                }
                if (changed) look(*reader);
            }
        } catch (const std::exception&) {
            reader.reset(); // a damaged or replaced file: the waiters' own tries report it
        }
        g.lock();
    }
    for (auto& [id, w] : waiting_) w.woken.notify_all();
}

// Once a second, for every waiter at once (so that a thousand waiting requests do not each wake
// to look): those whose request was cancelled (its client left) are woken to leave. Under mu_:
// a request outlives its enrolment, not more.
void LeaseWatch::wake_the_cancelled() {
    for (auto& [id, w] : waiting_)
        if (w.req->cancelled && w.req->cancelled()) {
            w.worth_trying = true;
            w.woken.notify_one();
        }
}

// Wakes the waiting leases of this process that may take a slot now: per model, those among the
// first waiting leases (of every process) that fit its free slots; every head when an owner
// died (its try reclaims the dead lease). Called without mu_; takes it to read and to wake.
void LeaseWatch::look(Store& reader) {
    std::map<std::string, SlotRequest> models; // one request per model, for its cap and limits
    std::map<std::string, std::int64_t> heads; // model -> our lowest waiting id
    {
        std::lock_guard<std::mutex> g(mu_);
        for (auto& [id, w] : waiting_)
            if (models.emplace(w.req->model, *w.req).second) heads.emplace(w.req->model, id);
    }
    std::set<std::int64_t> wake;
    if (an_owner_died(reader))
        for (auto& [model, id] : heads) wake.insert(id);
    else
        for (auto& [model, req] : models)
            for (auto id : grantable_leases(reader, req)) wake.insert(id);
    if (wake.empty()) return;
    std::lock_guard<std::mutex> g(mu_);
    for (auto id : wake)
        if (auto it = waiting_.find(id); it != waiting_.end()) {
            it->second.worth_trying = true;
            it->second.woken.notify_one();
        }
}

} // namespace llmctl
