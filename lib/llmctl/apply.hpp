#pragma once
// `llmctl apply` (issue 20): brings what runs in line with one config file. Servers started from
// that file whose model changed are restarted (with the drain), those whose model left it are
// stopped, preload models are started, and the stops' holds on its models are let go. Rows of
// ad-hoc servers and of other config files are never touched.

#include "llmctl/config.hpp"

#include <functional>
#include <string>
#include <vector>

namespace llmctl {

struct ApplyStep {
    enum class Kind { restart, stop, release, start };
    Kind kind = Kind::restart;
    std::string name;
    std::string why;      // "command, env changed", "not in the config", "preload = true", …
    std::string instance; // restart, stop: the server the plan saw (another one by then is left alone)
    // After run_apply:
    bool ok = false;
    std::string result; // the URL, "stopped", or the error
};

struct ApplyPlan {
    std::vector<ApplyStep> steps;
    int unchanged = 0; // servers of this config that stay as they are
    int foreign = 0;   // servers left alone: ad-hoc, or from another config file
};

// "restart", "stop", "release", "start".
const char* apply_verb(ApplyStep::Kind k);

// What `apply` would do, from a reader's snapshot: changes nothing.
ApplyPlan plan_apply(const std::string& state_dir, const Config& cfg);

// Carries the plan out, step by step (a failed step does not stop the next); `done` is called
// after each. Preload starts go through keep-warm's rule (only what fits its pool).
void run_apply(const std::string& state_dir, const Config& cfg, ApplyPlan& plan, const std::function<void(const ApplyStep&)>& done,
               const std::function<void(const std::string&)>& progress);

} // namespace llmctl
