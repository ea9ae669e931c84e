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

// `stop`'s side: holds `m` down (with the lock) when stop_holds(m). A full disk only loses the
// hold (the stop goes on); returns why, or "".
std::string hold_down(const std::string& state_dir, const ModelConfig& m);

} // namespace llmctl
