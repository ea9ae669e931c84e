#pragma once
// The `gateways` table (ARCHITECTURE.md, "The gateway"): one row per running `llmctl serve`, with
// its listen URL, its owner's process identity (as leases record theirs), when it started, and
// its requests in flight and served, for `ps`. A gateway writes its row once it listens, its
// counters at most once a second and only when they changed (one UPDATE without the state lock:
// it decides nothing), and deletes it on a clean exit. A row whose owner is dead (kill -9) is
// ignored by readers and deleted by reap and by the next gateway that registers.
//
// The same once-a-second look notices a state file that a newer llmctl migrated: the gateway must
// then stop and exit with Exit::newer_state, not fail every request.

#include "llmctl/errors.hpp"
#include "llmctl/process.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace llmctl {

class Store;

struct GatewayRow {
    std::int64_t id = 0;
    std::string url; // where it listens
    Identity owner;
    std::int64_t started_at = 0; // ms since the epoch
    std::int64_t in_flight = 0;  // model requests being served
    std::int64_t served = 0;     // model requests finished
};

// The rows whose owner lives, oldest first.
std::vector<GatewayRow> live_gateways(Store& store);

// The rows whose owner is gone, oldest first (what reap would delete).
std::vector<GatewayRow> dead_gateways(Store& store);

// Deletes the rows whose owner is gone (inside the caller's transaction) and returns them.
std::vector<GatewayRow> delete_dead_gateways(Store& store);

// A running gateway's row, kept by a thread of its own from construction to destruction.
class GatewayRegistry {
public:
    using Log = std::function<void(const std::string&)>;
    // Registers the gateway listening on `url` (deleting dead gateways' rows), then publishes the
    // counters once a second when they changed. Throws Error(newer_state) when a newer llmctl
    // migrated the state file; any other failure is logged once and the write retried a second later.
    GatewayRegistry(std::string state_dir, std::string url, const std::atomic<int>& in_flight, const std::atomic<std::uint64_t>& served,
                    Log log);
    GatewayRegistry(const GatewayRegistry&) = delete;
    // Deletes the row (not in a file of a newer llmctl, which is not ours to write).
    ~GatewayRegistry();

    // True once the state file turned out to be a newer llmctl's: the gateway must stop.
    bool must_stop() const { return must_stop_; }
    // Why it must stop (exit code Exit::newer_state); nullopt while it need not.
    std::optional<Error> fatal() const;

private:
    void loop();
    void look();
    void look_once();
    void warn(const Error& e);
    bool open_store();
    void register_row();
    void publish_counts();
    void give_up(const Error& e);

    std::string dir_, url_;
    const std::atomic<int>& in_flight_;
    const std::atomic<std::uint64_t>& served_;
    Log log_;
    Identity me_ = self_identity();
    std::int64_t started_at_ = 0;
    std::int64_t id_ = 0;                               // our row; 0 while not registered
    std::int64_t sent_in_flight_ = 0, sent_served_ = 0; // what the row says
    std::unique_ptr<Store> store_;                      // the connection for the counters
    bool warned_ = false;
    std::atomic<bool> must_stop_{false};
    mutable std::mutex mu_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::optional<Error> fatal_; // under mu_
    std::thread thread_;         // declared last: started once everything above is ready
};

} // namespace llmctl
