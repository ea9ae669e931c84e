#pragma once
// Holds (issue 20): `stop` holds a model that would otherwise come back by itself (restart =
// "always", or preload) down until a `start` or `apply` lets it go. A hold outlives the row.

#include "llmctl/config.hpp"
#include "llmctl/store.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace llmctl {

struct Hold {
    std::string name, origin;
    std::int64_t at = 0; // ms since the epoch
};

// Whether a stop of `m` holds it down: it would come back by itself otherwise.
bool stop_holds(const ModelConfig& m);

// Under the caller's transaction.
void add_hold(Store& store, const std::string& name, const std::string& origin);
bool release_hold(Store& store, const std::string& name); // true when there was one
bool is_held(Store& store, const std::string& name);
std::vector<Hold> load_holds(Store& store); // by name

// `stop`'s side, under its transaction: holds `m` down (with an event) when stop_holds(m);
// returns whether it did.
bool hold_down(Store& store, const ModelConfig& m);

} // namespace llmctl
