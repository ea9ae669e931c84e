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
    std::lock_guard<std::mutex> g(mu_);
    waiting_[id] = Waiting{&req, false};
    newcomer_ = true;
}

void LeaseWatch::leave(std::int64_t id) {
    std::lock_guard<std::mutex> g(mu_);
    waiting_.erase(id);
}

void LeaseWatch::poke() {
    {
        std::lock_guard<std::mutex> g(mu_);
        newcomer_ = true;
    }
    work_.notify_all();
}

bool LeaseWatch::wait(std::int64_t id, Millis at_most) {
    std::unique_lock<std::mutex> g(mu_);
    auto it = waiting_.find(id);
    if (it == waiting_.end()) return true;
    bool woken = woken_.wait_for(g, at_most, [&] { return it->second.worth_trying || stop_; });
    it->second.worth_trying = false;
    return woken;
}

// The thread: every 10 ms while anyone waits, a look when the file changed (or, every 500 ms,
// when an owner may have died).
void LeaseWatch::watch() {
    std::optional<Store> reader;
    std::int64_t seen_version = -1;
    auto last_liveness = clock::now();
    std::unique_lock<std::mutex> g(mu_);
    while (!stop_) {
        work_.wait_for(g, std::chrono::milliseconds(10), [&] { return stop_ || newcomer_; });
        bool newcomer = std::exchange(newcomer_, false); // (cleared even when nobody waits)
        if (stop_ || waiting_.empty()) continue;
        g.unlock();
        bool woke_any = false;
        try {
            if (!reader || !reader->still_current()) reader = Store::open_read(state_db_path(dir_));
            if (reader) {
                std::int64_t v = data_version(*reader);
                bool changed = v != seen_version || newcomer;
                seen_version = v;
                if (!changed && clock::now() - last_liveness >= std::chrono::milliseconds(500)) {
                    last_liveness = clock::now();
                    changed = an_owner_died(*reader);
                }
                if (changed) woke_any = look(*reader);
            }
        } catch (const std::exception&) {
            reader.reset(); // a damaged or replaced file: the waiters' own tries report it
        }
        g.lock();
        if (woke_any) woken_.notify_all();
    }
    woken_.notify_all();
}

// Marks the queue head of each model worth trying when its turn has come (or every head when an
// owner died: the try reclaims it). Called without mu_; takes it to read and mark.
bool LeaseWatch::look(Store& reader) {
    std::map<std::string, std::pair<std::int64_t, SlotRequest>> heads; // model -> lowest waiting id
    {
        std::lock_guard<std::mutex> g(mu_);
        for (auto& [id, w] : waiting_)
            if (!heads.count(w.req->model)) heads.emplace(w.req->model, std::make_pair(id, *w.req));
    }
    bool dead = an_owner_died(reader);
    std::set<std::int64_t> wake;
    for (auto& [model, head] : heads)
        if (dead || my_turn(reader, head.second, head.first).ok) wake.insert(head.first);
    if (wake.empty()) return false;
    std::lock_guard<std::mutex> g(mu_);
    for (auto id : wake)
        if (auto it = waiting_.find(id); it != waiting_.end()) it->second.worth_trying = true;
    return true;
}

} // namespace llmctl
