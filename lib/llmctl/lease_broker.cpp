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

void LeaseBroker::submit(std::function<void(Store&)> step, std::function<void(std::exception_ptr)> done) {
    auto s = std::make_shared<Step>();
    s->owned = std::move(step);
    s->fn = &s->owned;
    s->then = std::move(done);
    std::lock_guard<std::mutex> g(mu_);
    steps_.push_back(std::move(s));
    if (steps_.size() == 1) work_.notify_one();
}

void LeaseBroker::release(std::int64_t id) {
    if (!id) return;
    std::lock_guard<std::mutex> g(mu_);
    if (releases_.empty()) releases_since_ = clock::now();
    if (!releases_pending()) work_.notify_one(); // (the broker may be idle: its clock for them starts)
    releases_.push_back(id);
}

void LeaseBroker::release_spare(Spare spare) {
    if (!spare.id) return;
    spare.released = clock::now();
    std::lock_guard<std::mutex> g(mu_);
    if (!releases_pending()) work_.notify_one();
    spares_.push_back(std::move(spare));
}

// When the oldest release pending is due: a plain release k_release_delay after it came (or with
// the next step), a spare k_release_delay after it was let go of (a round for steps leaves the
// younger spares, which the next quick requests may still take back).
LeaseBroker::clock::time_point LeaseBroker::next_due() const {
    auto due = clock::time_point::max();
    if (!releases_.empty()) due = releases_since_ + k_release_delay;
    if (!spares_.empty()) due = std::min(due, spares_.front().released + k_release_delay);
    return due;
}

// The releases a round makes: every plain one, and the spares due (all of them when stopping).
std::vector<std::int64_t> LeaseBroker::take_due_releases() {
    std::vector<std::int64_t> out = std::exchange(releases_, {});
    const auto cutoff = clock::now() - k_release_delay;
    auto it = spares_.begin(); // (in the order they were let go of)
    while (it != spares_.end() && (stop_ || it->released <= cutoff)) out.push_back((it++)->id);
    spares_.erase(spares_.begin(), it);
    return out;
}

std::optional<LeaseBroker::Spare> LeaseBroker::take_spare(const std::string& model, std::chrono::steady_clock::time_point granted_after) {
    std::lock_guard<std::mutex> g(mu_);
    for (auto it = spares_.begin(); it != spares_.end(); ++it) {
        if (it->model != model || it->granted < granted_after) continue;
        Spare s = std::move(*it);
        spares_.erase(it);
        return s;
    }
    return std::nullopt;
}

// The thread: a round whenever steps wait, taking them and every pending release; releases
// alone wait up to k_release_delay for a step to go with (a round of their own each would cost a
// transaction and a wake per request). After a failed round, releases are tried again 100 ms
// later (and at the end, once more).
void LeaseBroker::loop() {
    std::unique_lock<std::mutex> g(mu_);
    for (;;) {
        work_.wait(g, [&] { return stop_ || !steps_.empty() || releases_pending(); });
        if (steps_.empty() && !stop_ && clock::now() < next_due()) {
            work_.wait_until(g, next_due(), [&] { return stop_ || !steps_.empty(); });
            continue; // (a step came, a release is due, or the spares were taken back)
        }
        std::vector<std::int64_t> releases = take_due_releases();
        if (steps_.empty() && releases.empty()) {
            if (stop_) return; // nothing left
            continue;
        }
        std::vector<std::shared_ptr<Step>> steps = std::exchange(steps_, {});
        g.unlock();
        round(steps, releases);
        g.lock();
        for (auto& s : steps) s->done = true;
        g.unlock();
        for (auto& s : steps) {
            if (s->then)
                s->then(s->error);
            else
                s->woken.notify_one();
        }
        steps.clear();
        g.lock();
        if (!releases.empty()) {                                                     // the round failed: keep them
            if (releases_.empty()) releases_since_ = clock::now() - k_release_delay; // (due now)
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
