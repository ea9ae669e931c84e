#include "llmctl/slots.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/lease_broker.hpp"
#include "llmctl/lease_watch.hpp"
#include "llmctl/lock.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"

#include <algorithm>
#include <chrono>
#include <fmt/format.h>
#include <limits>
#include <thread>

namespace llmctl {

void reclaim_dead_leases(Store& store) {
    std::vector<Identity> dead_owners;
    auto owners = store.prepare("SELECT DISTINCT owner_pid, owner_start_ticks, owner_boot_id FROM leases");
    while (owners.step())
        if (Identity owner = identity_at(owners, 0); !is_alive(owner)) dead_owners.push_back(owner);
    for (const Identity& owner : dead_owners) {
        std::vector<std::pair<std::int64_t, std::string>> dead;
        auto q = store.prepare("SELECT id, model FROM leases WHERE owner_pid=? AND owner_start_ticks=? AND owner_boot_id=?");
        q.bind(1, owner.pid).bind(2, static_cast<std::int64_t>(owner.start_ticks)).bind(3, owner.boot_id);
        while (q.step()) dead.emplace_back(q.i64(0), fmt::format("lease {} of {}: owner pid {} is gone", q.i64(0), q.str(1), owner.pid));
        for (auto& [id, why] : dead) reclaim_lease(store, id, why);
    }
}

namespace {

std::int64_t count(Store& store, const char* sql, const std::string& model, std::int64_t id = 0) {
    auto q = store.prepare(sql);
    q.bind(1, model);
    if (id) q.bind(2, id);
    return q.step() ? q.i64(0) : 0;
}

// True while the model's server is being stopped by a live stop (drain): no new slot on it.
bool draining(const std::optional<ServerRow>& r) { return r && r->status == "stopping" && owner_alive(*r); }

} // namespace

Turn my_turn(Store& store, const SlotRequest& req, std::int64_t id) {
    Turn t;
    const auto row = find_server(store, req.model);
    t.cap = req.managed && row ? slot_cap(*row, req.max_concurrent) : req.max_concurrent;
    std::int64_t ahead = count(store, "SELECT count(*) FROM leases WHERE model=? AND state='waiting' AND id<?", req.model, id);
    t.place = static_cast<int>(ahead) + 1;
    t.server_running = row && row->status == "running";
    t.server = row;
    if (draining(row)) return t; // a stop or restart is draining the server: wait until it is gone
    std::int64_t active = count(store, "SELECT count(*) FROM leases WHERE model=? AND state='active'", req.model);
    t.ok = ahead + active < t.cap; // every lease ahead of us fits too: none of theirs is taken
    if (t.ok && req.max_inflight > 0) {
        auto q = store.prepare("SELECT count(*) FROM leases WHERE state='active'");
        std::int64_t all = q.step() ? q.i64(0) : 0;
        t.ok = all < req.max_inflight; // the global cap; FIFO holds within each model
    }
    return t;
}

std::vector<std::int64_t> grantable_leases(Store& store, const SlotRequest& req) {
    std::vector<std::int64_t> out;
    const auto row = find_server(store, req.model);
    if (draining(row)) return out;
    std::int64_t cap = req.managed && row ? slot_cap(*row, req.max_concurrent) : req.max_concurrent;
    std::int64_t free = cap - count(store, "SELECT count(*) FROM leases WHERE model=? AND state='active'", req.model);
    if (req.max_inflight > 0) {
        auto q = store.prepare("SELECT count(*) FROM leases WHERE state='active'");
        free = std::min<std::int64_t>(free, req.max_inflight - (q.step() ? q.i64(0) : 0));
    }
    if (free <= 0) return out;
    auto q = store.prepare("SELECT id FROM leases WHERE model=? AND state='waiting' ORDER BY id LIMIT ?");
    q.bind(1, req.model).bind(2, free);
    while (q.step()) out.push_back(q.i64(0));
    return out;
}

// One client in a model's queue: its lease, taken under the lock, and the waits between tries,
// without it.
class Waiter {
public:
    Waiter(const std::string& state_dir, const SlotRequest& req) : dir_(state_dir), req_(req), me_(self_identity()) {}
    Waiter(const Waiter&) = delete;

    std::int64_t lease() const { return id_; }
    const std::string& dir() const { return dir_; }
    void restart_clock() { start_ = std::chrono::steady_clock::now(); }

    // Under the lock: reclaims dead owners' leases, queues ours (once: past max_queue waiting,
    // QueueFull) and makes it active when it is our turn. True when it is.
    // Through the broker when the request has one (one transaction shared with the process's other
    // steps), else in a transaction of its own.
    bool try_take(bool may_take = true) {
        const bool fresh = !id_;
        Turn t;
        auto step = [&](Store& store) { t = decide(store, may_take); };
        try {
            if (req_.broker) {
                req_.broker->run(step);
            } else {
                auto locked = open_locked(dir_);
                Transaction tx(locked.store);
                reclaim_dead_leases(locked.store);
                step(locked.store);
                tx.commit();
            }
        } catch (...) {
            if (fresh) id_ = 0; // not queued after all (and the id may be given again)
            throw;
        }
        if (t.ok)
            granted_row_ = std::move(t.server);
        else
            report(t.place);
        return t.ok;
    }

    // The quick way (take_if_free): our lease written active when a newcomer may take a slot
    // now and the model's server runs; nothing written otherwise.
    bool take_if_free(Store& store) {
        Turn t = my_turn(store, req_, std::numeric_limits<std::int64_t>::max());
        if (!t.ok || (req_.managed && !t.server_running)) return false;
        queue(store, true);
        granted_row_ = std::move(t.server);
        return true;
    }

    LeaseBroker* broker() const { return req_.broker; }
    std::optional<ServerRow> take_granted_row() { return std::move(granted_row_); }

    // Without the lock, backing off from 5 to 50 ms: returns when a read snapshot says trying
    // again is worth it (our turn, or a holder died, whose slot only a reclaim frees). Throws
    // when cancelled or past the queue timeout.
    void wait_until_worth_trying() {
        if (req_.watch) return wait_for_the_watch();
        for (;;) {
            check_limits();
            std::this_thread::sleep_for(backoff_);
            backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(50));
            auto reader = Store::open_read(state_db_path(dir_));
            if (!reader) return;
            Turn peek = my_turn(*reader, req_, id_);
            cap_ = peek.cap;
            if (peek.ok || a_holder_died(*reader)) return;
            report(peek.place);
        }
    }

    ~Waiter() {
        if (enrolled_) req_.watch->leave(id_);
    }

private:
    // Queues our lease (once: past max_queue waiting, QueueFull) and makes it active when it is
    // our turn (and `may_take`, or the request may take it at once); inside the caller's
    // transaction, after dead owners' leases were reclaimed.
    Turn decide(Store& store, bool may_take) {
        // A newcomer comes after every waiting lease: its turn is worked out before it is
        // written, and it is written once, active or waiting.
        const bool newcomer = !id_;
        Turn t = my_turn(store, req_, newcomer ? std::numeric_limits<std::int64_t>::max() : id_);
        if (newcomer) check_queue_room(t.place - 1);
        cap_ = t.cap;
        t.ok = t.ok && (may_take || (req_.take_if_ready && (!req_.managed || t.server_running)));
        if (newcomer)
            queue(store, t.ok);
        else if (t.ok)
            store.prepare("UPDATE leases SET state='active', acquired_at=? WHERE id=?").bind(1, now_ms()).bind(2, id_).run();
        return t;
    }

    // Woken by the process's watcher when worth it or when cancelled; at the queue timeout; and
    // every 30 s regardless, a safety net.
    void wait_for_the_watch() {
        if (!enrolled_) {
            req_.watch->enroll(id_, req_);
            enrolled_ = true;
        }
        for (;;) {
            check_limits();
            Millis step(30'000);
            if (req_.queue_timeout) {
                auto left = std::chrono::duration_cast<Millis>(*req_.queue_timeout - (std::chrono::steady_clock::now() - start_));
                step = std::clamp(left, Millis(1), step);
            }
            if (req_.watch->wait(id_, step)) {
                check_limits(); // woken because the client left: no try for it
                return;
            }
        }
    }

    // Past max_queue waiting leases of the model, QueueFull.
    void check_queue_room(std::int64_t waiting) const {
        if (req_.max_queue <= 0) return;
        if (waiting >= req_.max_queue)
            throw QueueFull(fmt::format("{} requests already wait for {} (max_queue {})", waiting, req_.model, req_.max_queue));
    }

    void queue(Store& store, bool active) {
        const std::int64_t now = now_ms();
        store
            .prepare("INSERT INTO leases(model, owner_pid, owner_start_ticks, owner_boot_id, state, created_at, acquired_at) "
                     "VALUES(?,?,?,?,?,?,?)")
            .bind(1, req_.model)
            .bind(2, me_.pid)
            .bind(3, static_cast<std::int64_t>(me_.start_ticks))
            .bind(4, me_.boot_id)
            .bind(5, active ? "active" : "waiting")
            .bind(6, now)
            .bind(7, active ? std::optional<std::int64_t>(now) : std::nullopt)
            .run();
        id_ = store.last_insert_id();
    }

    // Any model's lease counts, since max_inflight makes every lease count.
    bool a_holder_died(Store& reader) const {
        auto q = reader.prepare("SELECT DISTINCT owner_pid, owner_start_ticks, owner_boot_id FROM leases WHERE id<>?");
        q.bind(1, id_);
        while (q.step())
            if (!is_alive(identity_at(q, 0))) return true;
        return false;
    }

    void check_limits() const {
        if (req_.cancelled && req_.cancelled()) throw Error(Exit::interrupted, "interrupted while waiting for a slot");
        if (req_.queue_timeout && std::chrono::steady_clock::now() - start_ >= *req_.queue_timeout)
            throw Error(Exit::timeout,
                        fmt::format("no free slot for {} after {} ({} waiting ahead, max_concurrent {})", req_.model,
                                    format_duration(*req_.queue_timeout), last_place_ - 1, cap_),
                        "raise --queue-timeout, or max_concurrent if the server can take more");
    }

    // Tells the caller our place in the queue when it changes.
    void report(int place) {
        if (place != last_place_ && req_.on_wait) req_.on_wait(place);
        last_place_ = place;
    }

    std::string dir_;
    SlotRequest req_;
    Identity me_;
    std::int64_t id_ = 0;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
    std::chrono::milliseconds backoff_{5};
    int last_place_ = 0;
    int cap_ = req_.max_concurrent; // the cap in force at our last look
    bool enrolled_ = false;
    std::optional<ServerRow> granted_row_; // the server row the granting decision saw
};

QueuedLease::QueuedLease(const std::string& state_dir, const SlotRequest& req, bool take_now)
    : waiter_(std::make_unique<Waiter>(state_dir, req)) {
    if (!req.broker) ensure_state_dir(state_dir); // (a broker made it when it began)
    try {
        taken_ = waiter_->try_take(take_now);
        tried_ = take_now;
    } catch (...) {
        drop();
        throw;
    }
}

QueuedLease::~QueuedLease() { drop(); }

void QueuedLease::drop() noexcept {
    if (waiter_ && waiter_->lease())
        Slot(waiter_->dir(), waiter_->lease(), waiter_->broker()).release(); // never leave our queued lease behind
    waiter_.reset();
}

Slot QueuedLease::wait() {
    waiter_->restart_clock();
    try {
        if (!taken_ && !tried_) taken_ = waiter_->try_take();
        while (!taken_) {
            waiter_->wait_until_worth_trying();
            taken_ = waiter_->try_take();
        }
    } catch (...) {
        drop();
        throw;
    }
    Slot slot(waiter_->dir(), waiter_->lease(), waiter_->broker(), waiter_->take_granted_row());
    waiter_.reset();
    return slot;
}

std::int64_t QueuedLease::id() const { return waiter_ ? waiter_->lease() : 0; }

std::optional<Slot> take_if_free(Store& store, const std::string& state_dir, const SlotRequest& req) {
    Waiter w(state_dir, req);
    if (!w.take_if_free(store)) return std::nullopt;
    return Slot(state_dir, w.lease(), req.broker, w.take_granted_row());
}

Slot Slot::acquire(const std::string& state_dir, const SlotRequest& req) { return QueuedLease(state_dir, req, true).wait(); }

void Slot::release() noexcept {
    if (!id_) return;
    if (broker_) {
        broker_->release(std::exchange(id_, 0));
        return;
    }
    try {
        auto locked = open_locked(dir_);
        auto& store = locked.store;
        store.prepare("DELETE FROM leases WHERE id=?").bind(1, id_).run();
    } catch (...) {}
    id_ = 0;
}

void reclaim_lease(Store& store, std::int64_t id, const std::string& why) {
    store.prepare("DELETE FROM leases WHERE id=?").bind(1, id).run();
    store.add_event("", "lease_reclaimed", why);
}

std::map<std::string, LeaseCounts> live_leases_by_model(Store& store) {
    std::map<std::string, LeaseCounts> out;
    auto q = store.prepare("SELECT model, state, owner_pid, owner_start_ticks, owner_boot_id FROM leases");
    std::map<std::pair<pid_t, std::uint64_t>, bool> alive; // by owner: a gateway owns many
    while (q.step()) {
        Identity owner = identity_at(q, 2);
        auto [it, fresh] = alive.try_emplace({owner.pid, owner.start_ticks}, false);
        if (fresh) it->second = is_alive(owner);
        if (it->second) ++(q.str(1) == "active" ? out[q.str(0)].active : out[q.str(0)].queued);
    }
    return out;
}

} // namespace llmctl
