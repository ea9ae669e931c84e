#pragma once
// Group commit of a process's lease decisions (`llmctl serve`, ARCHITECTURE.md "Slots"): its
// request threads hand each lease step (queue, try, release) to one thread, which makes every
// step that arrived meanwhile in one transaction under the state lock, each step under a
// savepoint of its own (a step that throws, a full queue, undoes itself alone). A thousand
// decisions a second then cost tens of transactions, not a thousand; a release is not waited for.

#include "llmctl/servers.hpp"
#include "llmctl/units.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace llmctl {

class Store;

class LeaseBroker {
public:
    explicit LeaseBroker(std::string state_dir);
    LeaseBroker(const LeaseBroker&) = delete;
    // Makes the releases still pending, then stops.
    ~LeaseBroker();

    // Runs `step` in the next round: inside its transaction, the lock held, after dead owners'
    // leases were reclaimed. Returns once the round committed; rethrows what the step threw, or
    // what ended the round (the step's changes are then undone).
    void run(const std::function<void(Store&)>& step);

    // As run, without waiting: `step` runs in the next round, then `done` on the broker's thread
    // once the round committed, with what the step threw or what ended the round (nullptr when
    // it held). `done` must be quick (it posts to the caller's event loop).
    void submit(std::function<void(Store&)> step, std::function<void(std::exception_ptr)> done);

    // Deletes lease `id` in the next round, without waiting: with the next step's, or within
    // k_release_delay (a round that fails keeps it for the next one).
    void release(std::int64_t id);
    static constexpr Millis k_release_delay{5};

    // A lease of serve's quick way, released so that the next quick request for its model may
    // take it back instead of a new one (the slot goes from one request to the next without a
    // transaction): until the round that deletes it, as release() would, take_spare hands it out.
    struct Spare {
        std::int64_t id = 0;
        std::string model;
        std::chrono::steady_clock::time_point granted; // when the state file granted it
        std::shared_ptr<const ServerRow> server;       // the model's server row as that grant saw it
        std::chrono::steady_clock::time_point released{};
    };
    void release_spare(Spare spare);
    // The oldest spare of `model` granted at `granted_after` or later (a slot goes on from
    // request to request for a bounded while only: then a transaction decides again, as for
    // anybody else). Oldest first: under a steady load none falls due (each is taken back
    // within a request's turn), where the newest first left the older ones to fall due.
    std::optional<Spare> take_spare(const std::string& model, std::chrono::steady_clock::time_point granted_after);

    const std::string& state_dir() const { return dir_; }

private:
    struct Step {
        const std::function<void(Store&)>* fn = nullptr;
        std::function<void(Store&)> owned;            // a submitted step's (fn points at it)
        std::function<void(std::exception_ptr)> then; // a submitted step's: called instead of waking a thread
        std::exception_ptr error;
        bool done = false;
        std::condition_variable woken; // its thread's own: a round wakes only its steps' threads
    };
    void loop();
    bool releases_pending() const { return !releases_.empty() || !spares_.empty(); }
    using clock = std::chrono::steady_clock;
    clock::time_point next_due() const; // (mu_ held, as for the next)
    std::vector<std::int64_t> take_due_releases();
    void round(std::vector<std::shared_ptr<Step>>& steps, std::vector<std::int64_t>& releases);

    std::string dir_;
    std::mutex mu_;
    std::condition_variable work_;
    // Shared with the broker's thread, which wakes a step's caller after letting go of mu_ (a
    // thread woken under it would block on it at once: a context switch more per lease).
    std::vector<std::shared_ptr<Step>> steps_;
    std::vector<std::int64_t> releases_;
    std::deque<Spare> spares_;         // (in the order they were let go of: the oldest go first)
    clock::time_point releases_since_; // when the oldest plain release came
    bool stop_ = false;
    std::thread thread_;
};

} // namespace llmctl
