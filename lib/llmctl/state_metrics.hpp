#pragma once
// The state file's figures as Prometheus metrics (`llmctl metrics`, and the first part of serve's
// GET /metrics): servers, slots, memory pools, and the counters of requests, tokens and events
// (request_ledger.hpp, the events table's totals). Read from one snapshot without the state lock;
// nothing is written.

#include "llmctl/config.hpp"
#include "llmctl/prom_text.hpp"

#include <string>

namespace llmctl {

// Appends the state's metrics to `out`. `config` (nullable) gives the slot limits and the pools'
// budgets; a missing state file gives the families with no samples (and llmctl_state_file 0).
void write_state_metrics(PromText& out, const std::string& state_dir, const Config* config);

} // namespace llmctl
