#pragma once
// Keep warm (issue 20): a model with `preload = true` is started by reap, serve and apply when it
// has no server, unless `stop` holds it down, and only when it fits its memory pool without
// evicting anything (two preloads that cannot share a pool never take turns evicting each other).

#include "llmctl/config.hpp"

#include <functional>
#include <sys/types.h>
#include <string>
#include <vector>

namespace llmctl {

struct WarmStart {
    enum class Outcome { started, running, would_start, waits, failed }; // running: started by another meanwhile
    std::string name;
    Outcome outcome = Outcome::waits;
    pid_t pid = 0;
    std::string why; // "started, port 10501", "held down by a stop", "pool gpu has no room …", the error
};

// What a preload pass does for each preload model that has no server (a live or failed row leaves
// it alone; a dead one is cleared by the start): started, or why not.
struct WarmOptions {
    bool dry_run = false;
    bool wait = true;                // wait for health (false: the row is left without an owner, as start --no-wait)
    std::function<bool()> cancelled; // polled while a start waits (serve's shutdown); empty: never
};
std::vector<WarmStart> start_preloads(const std::string& state_dir, const Config& cfg, const WarmOptions& opts);

} // namespace llmctl
