#pragma once
// Concurrency slots (ARCHITECTURE.md): a lease row per client, owned by the client's process
// identity. At most `max_concurrent` active leases per model (and `max_inflight` over all
// models when set), granted in lease id order: a lease may take a slot when the active leases
// and the waiting ones ahead of it together leave one free (so no later lease ever takes a slot
// an earlier one needs, and many queued at once are granted at once). No slot is granted while the model's server is
// `stopping` under a live stop (a drain): those clients wait until it is gone or replaced. A dead owner's lease is reclaimed by the next
// acquirer or by reap, so a client killed with SIGKILL can never keep a slot.

#include "llmctl/errors.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/units.hpp"

#include <cstdint>
#include <functional>
#include <vector>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace llmctl {

class Store;
class LeaseWatch;
class LeaseBroker;

struct SlotRequest {
    std::string model;
    int max_concurrent = 1; // the acquirer's config (see managed)
    // A model llmctl runs (not a `url` one): while its server's row is live, the cap recorded on
    // it when it started is in force instead of max_concurrent, so that every process enforces
    // one number whatever config it read (looked up at each decision: a lease may be queued
    // before its server exists).
    bool managed = false;
    // A QueuedLease queued on arrival may take its slot at once (one transaction, not two) when
    // nothing has to start first: the model's server runs, or the model is a `url` one.
    bool take_if_ready = false;
    int max_inflight = 0;                // 0: no global cap
    std::optional<Millis> queue_timeout; // none: wait as long as it takes
    // Waiting leases of the model (from every process) beyond which a new one is refused with
    // QueueFull; 0: no limit.
    int max_queue = 0;
    // Called while waiting with the place in the queue (1 = next), when it changes.
    std::function<void(int place)> on_wait;
    // Polled while waiting; true aborts the wait (Ctrl-C) with Error(interrupted).
    std::function<bool()> cancelled;
    // A process holding many waiting leases (serve) waits through one watcher (lease_watch.hpp)
    // instead of each polling the state file; `cancelled` is then polled once a second.
    LeaseWatch* watch = nullptr;
    // Such a process makes its lease steps (queue, try, release) through one broker
    // (lease_broker.hpp): many in one transaction.
    LeaseBroker* broker = nullptr;
};

// The model's queue is full (SlotRequest::max_queue).
struct QueueFull : Error {
    explicit QueueFull(const std::string& what) : Error(Exit::timeout, what, "try again later") {}
};

class Waiter;

class Slot {
public:
    // Waits for a slot; throws Error(timeout) after queue_timeout, naming how many are ahead.
    static Slot acquire(const std::string& state_dir, const SlotRequest& req);
    Slot(Slot&& o) noexcept : dir_(std::move(o.dir_)), id_(std::exchange(o.id_, 0)), broker_(o.broker_), server_(std::move(o.server_)) {}
    Slot(const Slot&) = delete;
    ~Slot() { release(); }
    // Deletes the lease (idempotent; errors are swallowed: reap reclaims it otherwise).
    void release() noexcept;
    // Lets go of the lease without deleting it: the transaction that wrote it was undone (its id
    // may already be another lease's).
    void forget() noexcept { id_ = 0; }
    std::int64_t id() const { return id_; }
    // The model's server row as the transaction that granted the slot saw it (a managed model's).
    const std::optional<ServerRow>& server_at_grant() const { return server_; }

private:
    friend class QueuedLease;
    friend std::optional<Slot> take_if_free(Store&, const std::string&, const SlotRequest&);
    Slot(std::string dir, std::int64_t id, LeaseBroker* broker, std::optional<ServerRow> server = std::nullopt)
        : dir_(std::move(dir)), id_(id), broker_(broker), server_(std::move(server)) {}
    std::string dir_;
    std::int64_t id_ = 0;
    LeaseBroker* broker_ = nullptr;
    std::optional<ServerRow> server_;
};

// A lease taken when a request arrives, before it asks for its server (so a server started for
// it is already in use), and waited on after: `wait` turns it into a Slot. The constructor queues
// it (QueueFull past max_queue), waiting: a stop's drain waits for active leases only, and a
// request waiting for its server to start must not hold one up (`take_now`: active at once when
// it may be, for a caller whose server runs). Destroyed unturned, it is deleted.
class QueuedLease {
public:
    QueuedLease(const std::string& state_dir, const SlotRequest& req, bool take_now = false);
    QueuedLease(const QueuedLease&) = delete;
    ~QueuedLease();
    // Waits for our turn (as Slot::acquire; the queue timeout counts from this call, not from the
    // queueing: the server's start has a timeout of its own). Call once.
    Slot wait();
    std::int64_t id() const;
    // The slot was taken by the constructor (`take_now`, or SlotRequest::take_if_ready with the
    // model's server running): wait() returns at once.
    bool taken() const { return taken_; }

private:
    void drop() noexcept;
    std::unique_ptr<Waiter> waiter_;
    bool taken_ = false;
    bool tried_ = false; // the constructor already tried to take it
};

// The quick way of a request on an event loop (serve): a slot taken now, inside the caller's
// transaction (a broker step: dead owners' leases already reclaimed), when a newcomer may take one
// and the model's server runs (or it is a `url` model); nothing is written otherwise, and the
// request goes the way of a QueuedLease.
std::optional<Slot> take_if_free(Store& store, const std::string& state_dir, const SlotRequest& req);

// Lease `id`'s place in its model's queue (1 = next) and whether the slot can be ours now: the
// active leases of the model plus the waiting ones ahead of it are fewer than `cap`
// (SlotRequest::managed), and the active ones over all models fewer than max_inflight; never
// while a live stop drains the model's server.
struct Turn {
    int place = 1;
    bool ok = false;
    bool server_running = false;     // the model's row says running (managed models)
    int cap = 1;                     // the model's cap in force at this decision
    std::optional<ServerRow> server; // the model's server row at this decision
};
Turn my_turn(Store& store, const SlotRequest& req, std::int64_t id);

// The waiting leases of `req.model` (of every process) that may take a slot now, as my_turn would
// decide for each: the first ones in id order.
std::vector<std::int64_t> grantable_leases(Store& store, const SlotRequest& req);

// Deletes the leases whose owner died (event lease_reclaimed for each); inside the caller's
// transaction. Each owner is checked once: a gateway may own a thousand leases.
void reclaim_dead_leases(Store& store);

// Deletes the lease of a client that died, with an event lease_reclaimed saying `why`; inside
// the caller's transaction (a slot's acquirer and reap both reclaim).
void reclaim_lease(Store& store, std::int64_t id, const std::string& why);

// The leases of live clients, by model (what `ps` shows as ACTIVE and QUEUED).
struct LeaseCounts {
    int active = 0, queued = 0;
};
std::map<std::string, LeaseCounts> live_leases_by_model(Store& store);

} // namespace llmctl
