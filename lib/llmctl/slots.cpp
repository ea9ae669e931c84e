#include "llmctl/slots.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/lock.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"

#include <algorithm>
#include <chrono>
#include <fmt/format.h>
#include <thread>

namespace llmctl {

namespace {

// Deletes leases whose owner is dead (event lease_reclaimed); inside the caller's transaction.
void reclaim_dead(Store& store) {
    std::vector<std::pair<std::int64_t, std::string>> dead;
    auto q = store.prepare("SELECT id, model, owner_pid, owner_start_ticks, owner_boot_id FROM leases");
    while (q.step()) {
        Identity owner{static_cast<pid_t>(q.i64(2)), static_cast<std::uint64_t>(q.i64(3)), q.str(4)};
        if (!is_alive(owner)) dead.emplace_back(q.i64(0), fmt::format("lease {} of {}: owner pid {} is gone", q.i64(0), q.str(1), owner.pid));
    }
    for (auto& [id, why] : dead) {
        store.prepare("DELETE FROM leases WHERE id=?").bind(1, id).run();
        store.add_event("", "lease_reclaimed", why);
    }
}

std::int64_t count(Store& store, const char* sql, const std::string& model, std::int64_t id = 0) {
    auto q = store.prepare(sql);
    q.bind(1, model);
    if (id) q.bind(2, id);
    return q.step() ? q.i64(0) : 0;
}

// Our place in the queue (1 = next) and whether the slot can be ours now.
struct Turn {
    int place = 1;
    bool ok = false;
};

// True while the model's server is being stopped by a live stop (drain): no new slot on it.
bool draining(Store& store, const std::string& model) {
    auto q = store.prepare("SELECT owner_pid, owner_start_ticks FROM servers WHERE name=? AND status='stopping'");
    q.bind(1, model);
    if (!q.step()) return false;
    return is_alive(Identity{static_cast<pid_t>(q.i64(0)), static_cast<std::uint64_t>(q.i64(1)), boot_id()});
}

Turn my_turn(Store& store, const SlotRequest& req, std::int64_t id) {
    Turn t;
    if (draining(store, req.model)) {
        t.place = static_cast<int>(count(store, "SELECT count(*) FROM leases WHERE model=? AND state='waiting' AND id<?", req.model, id)) + 1;
        t.ok = false; // a stop or restart is draining the server: wait until it is gone
        return t;
    }
    std::int64_t ahead = count(store, "SELECT count(*) FROM leases WHERE model=? AND state='waiting' AND id<?", req.model, id);
    std::int64_t active = count(store, "SELECT count(*) FROM leases WHERE model=? AND state='active'", req.model);
    t.place = static_cast<int>(ahead) + 1;
    t.ok = ahead == 0 && active < req.max_concurrent;
    if (t.ok && req.max_inflight > 0) {
        auto q = store.prepare("SELECT count(*) FROM leases WHERE state='active'");
        std::int64_t all = q.step() ? q.i64(0) : 0;
        t.ok = all < req.max_inflight; // the global cap; FIFO holds within each model
    }
    return t;
}

} // namespace

Slot Slot::acquire(const std::string& state_dir, const SlotRequest& req) {
    ensure_state_dir(state_dir);
    Identity me = self_identity();
    std::int64_t id = 0;
    auto try_take = [&]() -> Turn {
        auto locked = open_locked(state_dir);
        auto& store = locked.store;
        Transaction tx(store);
        reclaim_dead(store);
        if (!id) {
            store.prepare("INSERT INTO leases(model, owner_pid, owner_start_ticks, owner_boot_id, state, created_at) VALUES(?,?,?,?, 'waiting', ?)")
                .bind(1, req.model).bind(2, me.pid).bind(3, static_cast<std::int64_t>(me.start_ticks)).bind(4, me.boot_id).bind(5, now_ms()).run();
            id = store.last_insert_id();
        }
        Turn t = my_turn(store, req, id);
        if (t.ok) store.prepare("UPDATE leases SET state='active', acquired_at=? WHERE id=?").bind(1, now_ms()).bind(2, id).run();
        tx.commit();
        return t;
    };
    auto give_up = [&](Error e) {
        Slot(state_dir, id).release();
        id = 0;
        throw e;
    };
    auto wait_for_turn = [&]() -> Slot {
        auto start = std::chrono::steady_clock::now();
        int last_place = 0;
        auto backoff = std::chrono::milliseconds(5);
        for (;;) {
            Turn t = try_take();
            if (t.ok) return Slot(state_dir, id);
            if (t.place != last_place && req.on_wait) req.on_wait(t.place);
            last_place = t.place;
            // Wait without the lock; a read snapshot says when trying again is worth it.
            for (;;) {
                if (req.cancelled && req.cancelled()) give_up(Error(Exit::interrupted, "interrupted while waiting for a slot"));
                auto waited = std::chrono::steady_clock::now() - start;
                if (req.queue_timeout && waited >= *req.queue_timeout)
                    give_up(Error(Exit::timeout,
                                  fmt::format("no free slot for {} after {} ({} waiting ahead, max_concurrent {})", req.model,
                                              format_duration(*req.queue_timeout), last_place - 1, req.max_concurrent),
                                  "raise --queue-timeout, or max_concurrent if the server can take more"));
                std::this_thread::sleep_for(backoff);
                backoff = std::min(backoff * 2, std::chrono::milliseconds(50));
                auto reader = Store::open_read(state_db_path(state_dir));
                if (!reader) break;
                Turn peek = my_turn(*reader, req, id);
                if (peek.ok) break;
                // A dead holder frees its slot only when reclaimed: look for one (any model's, since
                // max_inflight makes every lease count).
                auto q = reader->prepare("SELECT owner_pid, owner_start_ticks, owner_boot_id FROM leases WHERE id<>?");
                q.bind(1, id);
                bool someone_dead = false;
                while (q.step() && !someone_dead)
                    someone_dead = !is_alive(identity_at(q, 0));
                if (someone_dead) break;
                if (peek.place != last_place && req.on_wait) req.on_wait(peek.place);
                last_place = peek.place;
            }
        }
    };
    try {
        return wait_for_turn();
    } catch (...) {
        if (id) Slot(state_dir, id).release(); // never leave our queued lease behind
        throw;
    }
}

void Slot::release() noexcept {
    if (!id_) return;
    try {
        auto locked = open_locked(dir_);
        auto& store = locked.store;
        store.prepare("DELETE FROM leases WHERE id=?").bind(1, id_).run();
    } catch (...) {
    }
    id_ = 0;
}

std::map<std::string, LeaseCounts> live_leases_by_model(Store& store) {
    std::map<std::string, LeaseCounts> out;
    auto q = store.prepare("SELECT model, state, owner_pid, owner_start_ticks, owner_boot_id FROM leases");
    while (q.step())
        if (is_alive(identity_at(q, 2))) ++(q.str(1) == "active" ? out[q.str(0)].active : out[q.str(0)].queued);
    return out;
}

} // namespace llmctl
