#pragma once
// Port allocation: the lowest port of a range that no live row holds and that a bind()
// probe finds free.

#include <optional>
#include <set>
#include <string>

namespace llmctl {

// True when a TCP listener could bind host:port now. SO_REUSEADDR is set so that a port in
// TIME_WAIT does not look busy.
bool port_is_free(const std::string& host, int port);

// The lowest port in [lo, hi] not in `held` whose probe succeeds, or nullopt.
std::optional<int> pick_port(const std::string& host, int lo, int hi, const std::set<int>& held);

} // namespace llmctl
