#include "llmctl/lease_broker.hpp"

#include "llmctl/paths.hpp"
#include "llmctl/slots.hpp"
#include "llmctl/store.hpp"

#include <chrono>
#include <utility>

namespace llmctl {

namespace {

// A step's own savepoint: its changes kept when it returns, undone when it throws.
void run_under_savepoint(Store& store, const std::function<void(Store&)>& step) {
    store.prepare("SAVEPOINT step").run(); // (prepared once: exec would parse it each time)
    try {
        step(store);
    } catch (...) {
        store.prepare("ROLLBACK TO step").run();
        store.prepare("RELEASE step").run();
        throw;
    }
    store.prepare("RELEASE step").run();
}

void delete_leases(Store& store, const std::vector<std::int64_t>& ids) {
    for (std::int64_t id : ids) store.prepare("DELETE FROM leases WHERE id=?").bind(1, id).run();
}

} // namespace

LeaseBroker::LeaseBroker(std::string state_dir) : dir_(std::move(state_dir)) {
    ensure_state_dir(dir_); // once here, not at each lease
    thread_ = std::thread([this] { loop(); });
}

LeaseBroker::~LeaseBroker() {
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    work_.notify_all();
    thread_.join();
}

void LeaseBroker::run(const std::function<void(Store&)>& step) {
    auto s = std::make_shared<Step>();
    s->fn = &step;
    std::unique_lock<std::mutex> g(mu_);
    steps_.push_back(s);
    if (steps_.size() == 1) work_.notify_one(); // (else the broker has been told)
    s->woken.wait(g, [&] { return s->done; });
    if (s->error) std::rethrow_exception(s->error);
}

void LeaseBroker::release(std::int64_t id) {
    if (!id) return;
    bool first = false;
    {
        std::lock_guard<std::mutex> g(mu_);
        first = releases_.empty();
        if (first) releases_due_ = std::chrono::steady_clock::now() + k_release_delay;
        releases_.push_back(id);
    }
    if (first) work_.notify_one(); // (the broker may be idle: its clock for them starts)
}

// The thread: a round whenever steps wait, taking them and every pending release; releases
// alone wait up to k_release_delay for a step to go with (a round of their own each would cost a
// transaction and a wake per request). After a failed round, releases are tried again 100 ms
// later (and at the end, once more).
void LeaseBroker::loop() {
    std::unique_lock<std::mutex> g(mu_);
    for (;;) {
        work_.wait(g, [&] { return stop_ || !steps_.empty() || !releases_.empty(); });
        if (steps_.empty() && !stop_) work_.wait_until(g, releases_due_, [&] { return stop_ || !steps_.empty(); });
        if (steps_.empty() && releases_.empty()) return; // stopping, nothing left
        std::vector<std::shared_ptr<Step>> steps = std::exchange(steps_, {});
        std::vector<std::int64_t> releases = std::exchange(releases_, {});
        g.unlock();
        round(steps, releases);
        g.lock();
        for (auto& s : steps) s->done = true;
        g.unlock();
        for (auto& s : steps) s->woken.notify_one();
        steps.clear();
        g.lock();
        if (!releases.empty()) { // the round failed: keep them
            if (releases_.empty()) releases_due_ = std::chrono::steady_clock::now();
            releases_.insert(releases_.end(), releases.begin(), releases.end());
            if (stop_) return;
            work_.wait_for(g, std::chrono::milliseconds(100), [&] { return stop_; });
        }
    }
}

// One transaction for all: releases first (their slots are free for the steps), then the dead
// owners' leases, then each step. `releases` is emptied once they are committed.
void LeaseBroker::round(std::vector<std::shared_ptr<Step>>& steps, std::vector<std::int64_t>& releases) {
    try {
        auto locked = open_locked(dir_);
        Store& store = locked.store;
        Transaction tx(store);
        delete_leases(store, releases);
        if (!steps.empty()) reclaim_dead_leases(store);
        for (auto& s : steps) {
            try {
                run_under_savepoint(store, *s->fn);
            } catch (...) {
                s->error = std::current_exception();
            }
        }
        tx.commit();
        releases.clear();
    } catch (...) {
        for (auto& s : steps)
            if (!s->error) s->error = std::current_exception();
    }
}

} // namespace llmctl
