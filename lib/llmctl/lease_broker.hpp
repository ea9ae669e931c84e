#pragma once
// Group commit of a process's lease decisions (`llmctl serve`, ARCHITECTURE.md "Slots"): its
// request threads hand each lease step (queue, try, release) to one thread, which makes every
// step that arrived meanwhile in one transaction under the state lock, each step under a
// savepoint of its own (a step that throws, a full queue, undoes itself alone). A thousand
// decisions a second then cost tens of transactions, not a thousand; a release is not waited for.

#include "llmctl/units.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
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

    // Deletes lease `id` in the next round, without waiting: with the next step's, or within
    // k_release_delay (a round that fails keeps it for the next one).
    void release(std::int64_t id);
    static constexpr Millis k_release_delay{5};

    const std::string& state_dir() const { return dir_; }

private:
    struct Step {
        const std::function<void(Store&)>* fn = nullptr;
        std::exception_ptr error;
        bool done = false;
        std::condition_variable woken; // its thread's own: a round wakes only its steps' threads
    };
    void loop();
    void round(std::vector<std::shared_ptr<Step>>& steps, std::vector<std::int64_t>& releases);

    std::string dir_;
    std::mutex mu_;
    std::condition_variable work_;
    // Shared with the broker's thread, which wakes a step's caller after letting go of mu_ (a
    // thread woken under it would block on it at once: a context switch more per lease).
    std::vector<std::shared_ptr<Step>> steps_;
    std::vector<std::int64_t> releases_;
    std::chrono::steady_clock::time_point releases_due_; // the first pending release's round, at the latest
    bool stop_ = false;
    std::thread thread_;
};

} // namespace llmctl
