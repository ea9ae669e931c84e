#pragma once

#include "log.hpp"
#include "options.hpp"

#include <atomic>
#include <cstdint>

namespace mock {

// State shared by every thread for the life of the process.
struct ServerState {
    explicit ServerState(const Options& o) : options(o) {}

    const Options& options;
    RequestLog request_log;
    std::atomic<bool> loaded{false};           // false answers 503 "Loading model"
    std::atomic<int> chats_in_flight{0};       // read by the SIGTERM handler for --abort-on-term-in-flight
    std::atomic<std::uint64_t> next_id{0};     // makes completion ids unique within the process
    std::atomic<std::uint64_t> generations{0}; // chat and completion requests that arrived (--crash-after-requests)
};

} // namespace mock
