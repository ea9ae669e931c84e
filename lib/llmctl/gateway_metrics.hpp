#pragma once
// What one `serve` process saw, for its GET /metrics (after the state's, state_metrics.hpp):
// requests by model and status code, tokens relayed, and histograms of the wait for a slot and
// of the time to the first token. In memory, from the process's start (Prometheus counters: a
// restart shows as a reset, which rate() handles).

#include "llmctl/prom_text.hpp"
#include "llmctl/units.hpp"

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace llmctl {

class GatewayMetrics {
public:
    struct Request {
        std::string model;
        int status = 0;
        Millis queue_wait{0};
        std::optional<Millis> first_token;
        std::optional<std::int64_t> tokens_in;
        std::int64_t tokens_out = 0;
    };
    void observe(const Request& r);
    // Appends this process's families; `in_flight`: the requests it relays now.
    void write(PromText& out, int in_flight) const;

private:
    struct Histogram {
        std::vector<std::uint64_t> counts; // per bucket (k_bounds), the last one above them all
        double sum = 0;
        void add(double seconds);
    };
    struct PerModel {
        std::map<int, std::uint64_t> by_status;
        std::uint64_t tokens_in = 0, tokens_out = 0;
        Histogram queue_wait, first_token;
    };
    mutable std::mutex mu_;
    std::map<std::string, PerModel> models_;
};

} // namespace llmctl
