#include "llmctl/shared_starts.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/supervisor.hpp"

#include <condition_variable>
#include <exception>

namespace llmctl {

using clock = std::chrono::steady_clock;

struct SharedStarts::Start {
    std::mutex mu;
    std::condition_variable done_cv;
    bool done = false;
    std::exception_ptr error;
    int wanted = 1; // requests still waiting for it, the leader's included
    clock::time_point began = clock::now();
};

namespace {

Millis since(clock::time_point t) { return std::chrono::duration_cast<Millis>(clock::now() - t); }

} // namespace

std::shared_ptr<SharedStarts::Start> SharedStarts::join_or_lead(const std::string& name, bool& leader) {
    std::lock_guard<std::mutex> g(mu_);
    auto& slot = starts_[name];
    leader = !slot;
    if (leader) {
        slot = std::make_shared<Start>();
    } else {
        std::lock_guard<std::mutex> sg(slot->mu);
        ++slot->wanted;
    }
    return slot;
}

void SharedStarts::ensure_running(const std::string& state_dir, const ModelConfig& model, const Waiting& w, const Config* config) {
    bool leader = false;
    auto s = join_or_lead(model.name, leader);
    if (leader)
        lead(state_dir, model, s, w, config);
    else
        follow(s, w);
}

void SharedStarts::lead(const std::string& state_dir, const ModelConfig& model, const std::shared_ptr<Start>& s, const Waiting& w,
                        const Config* config) {
    bool counted_out = false;
    StartOptions so;
    so.config = config;
    so.admission_timeout = model.queue_timeout; // a request waits for memory as for a slot
    so.waiting = [&](const std::string&, Millis elapsed) { w.progress(elapsed); };
    // The start is called off only when no request wants it any more.
    so.cancelled = [&] {
        std::lock_guard<std::mutex> g(s->mu);
        if (!counted_out && w.gone()) {
            counted_out = true;
            --s->wanted;
        }
        return s->wanted == 0;
    };
    std::exception_ptr error;
    try {
        start_server(state_dir, model, so);
    } catch (...) {
        error = std::current_exception();
    }
    {
        std::lock_guard<std::mutex> g(mu_);
        starts_.erase(model.name);
    }
    {
        std::lock_guard<std::mutex> g(s->mu);
        s->done = true;
        s->error = error;
    }
    s->done_cv.notify_all();
    if (error) std::rethrow_exception(error);
    if (counted_out) throw Error(Exit::interrupted, "the client left while its model started");
}

void SharedStarts::follow(const std::shared_ptr<Start>& s, const Waiting& w) {
    std::unique_lock<std::mutex> g(s->mu);
    while (!s->done) {
        s->done_cv.wait_for(g, std::chrono::milliseconds(500));
        if (s->done) break;
        g.unlock();
        bool gone = w.gone();
        w.progress(since(s->began));
        g.lock();
        if (gone) {
            --s->wanted;
            throw Error(Exit::interrupted, "the client left while its model started");
        }
    }
    if (s->error) std::rethrow_exception(s->error);
}

} // namespace llmctl
