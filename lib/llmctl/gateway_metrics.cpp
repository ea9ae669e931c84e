#include "llmctl/gateway_metrics.hpp"

#include <algorithm>

namespace llmctl {

namespace {

// Seconds: from a slot at hand (milliseconds) to a large model's start (minutes).
const std::vector<double> k_bounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

double seconds(Millis d) { return static_cast<double>(d.count()) / 1000.0; }

} // namespace

void GatewayMetrics::Histogram::add(double s) {
    if (counts.empty()) counts.assign(k_bounds.size() + 1, 0);
    auto at = std::lower_bound(k_bounds.begin(), k_bounds.end(), s); // (le: a value on a bound is in it)
    ++counts[static_cast<std::size_t>(at - k_bounds.begin())];
    sum += s;
}

void GatewayMetrics::observe(const Request& r) {
    std::lock_guard<std::mutex> g(mu_);
    PerModel& m = models_[r.model];
    ++m.by_status[r.status];
    m.tokens_in += static_cast<std::uint64_t>(r.tokens_in.value_or(0));
    m.tokens_out += static_cast<std::uint64_t>(r.tokens_out);
    m.queue_wait.add(seconds(r.queue_wait));
    if (r.first_token) m.first_token.add(seconds(*r.first_token));
}

void GatewayMetrics::write(PromText& out, int in_flight) const {
    std::map<std::string, PerModel> models; // (a copy: the loops' observe() does not wait for the formatting)
    {
        std::lock_guard<std::mutex> g(mu_);
        models = models_;
    }
    out.family("llmctl_serve_in_flight", "gauge", "Requests this serve process relays now");
    out.sample({}, in_flight);
    out.family("llmctl_serve_requests_total", "counter",
               "Requests to models through this serve process, by the status code it answered (499: the client went first)");
    for (const auto& [model, m] : models)
        for (const auto& [status, n] : m.by_status)
            out.sample({{"model", model}, {"code", std::to_string(status)}}, static_cast<double>(n));
    out.family("llmctl_serve_tokens_total", "counter", "Tokens this serve process relayed: in (the prompt, by usage) and out");
    for (const auto& [model, m] : models) {
        out.sample({{"model", model}, {"direction", "in"}}, static_cast<double>(m.tokens_in));
        out.sample({{"model", model}, {"direction", "out"}}, static_cast<double>(m.tokens_out));
    }
    out.family("llmctl_serve_queue_wait_seconds", "histogram", "Time from a request's arrival to its slot (its model's start included)");
    for (const auto& [model, m] : models) out.histogram({{"model", model}}, k_bounds, m.queue_wait.counts, m.queue_wait.sum);
    out.family("llmctl_serve_time_to_first_token_seconds", "histogram", "Time from a request's arrival to the first token of its answer");
    for (const auto& [model, m] : models)
        if (!m.first_token.counts.empty()) out.histogram({{"model", model}}, k_bounds, m.first_token.counts, m.first_token.sum);
}

} // namespace llmctl
