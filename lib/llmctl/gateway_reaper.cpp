#include "llmctl/gateway_reaper.hpp"

#include "llmctl/keep_warm.hpp"
#include "llmctl/reap.hpp"

#include <fmt/format.h>

namespace llmctl {

GatewayReaper::GatewayReaper(std::string state_dir, ConfigNow config, Millis every, Log log)
    : state_dir_(std::move(state_dir)), config_(std::move(config)), log_(std::move(log)), every_(every) {
    thread_ = std::thread([this] { loop(); });
}

GatewayReaper::~GatewayReaper() {
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void GatewayReaper::set_period(Millis every) {
    {
        std::lock_guard<std::mutex> g(mu_);
        every_ = every;
    }
    wake_.notify_all();
}

void GatewayReaper::loop() {
    preload_once(); // keep warm from the start, not only from the first reap
    auto last = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> g(mu_);
    while (!stop_) {
        if (every_.count() <= 0) {
            wake_.wait(g);
            continue;
        }
        auto due = last + every_;
        if (std::chrono::steady_clock::now() < due) {
            wake_.wait_until(g, due); // or until stopped, or the period changed
            continue;
        }
        g.unlock();
        reap_once();
        last = std::chrono::steady_clock::now();
        g.lock();
    }
}

bool GatewayReaper::stopping() {
    std::lock_guard<std::mutex> g(mu_);
    return stop_;
}

// The preload models that have no server are started (on this thread: requests meanwhile wait for
// them as for any start).
void GatewayReaper::preload_once() {
    try {
        auto cfg = config_();
        WarmOptions o;
        o.cancelled = [this] { return stopping(); }; // serve shutting down waits for no start
        for (const auto& w : start_preloads(state_dir_, *cfg, o))
            if (w.outcome == WarmStart::Outcome::started || w.outcome == WarmStart::Outcome::failed)
                log_(fmt::format("preload {}{}: {}", w.name, w.pid ? fmt::format(" (pid {})", w.pid) : "", w.why));
    } catch (const std::exception& e) {
        log_(fmt::format("preload: {}", e.what()));
    }
}

// One reap: what it did and what it could not do go to the log, a line each.
void GatewayReaper::reap_once() {
    try {
        auto cfg = config_();
        ReapOptions o;
        o.cancelled = [this] { return stopping(); };
        ReapReport r = reap(state_dir_, *cfg, o);
        for (const auto& a : r.actions)
            log_(fmt::format("reap: {} {}{}: {}", a.kind, a.name.empty() ? "-" : a.name, a.pid ? fmt::format(" (pid {})", a.pid) : "",
                             a.detail));
        for (const auto& w : r.warnings) log_("reap: warning: " + w);
    } catch (const std::exception& e) {
        log_(fmt::format("reap: {}", e.what()));
    }
}

} // namespace llmctl
