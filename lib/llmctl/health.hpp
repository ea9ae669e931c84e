#pragma once
// Readiness: an HTTP health probe (Boost.Beast, bounded in time) and the check that the
// port's listening socket belongs to the server's own processes (llama-server sets
// SO_REUSEPORT, so a stranger can share a port and answer the probe).

#include "llmctl/units.hpp"

#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace llmctl {

// GET http://host:port/path; the HTTP status, or 0 when nothing answered within `timeout`.
int probe_health(const std::string& host, int port, const std::string& path, Millis timeout);

// Inodes of TCP sockets listening on `port` (from /proc/net/tcp and tcp6).
std::set<unsigned long> listening_inodes(int port);

// True when some process in `pids` holds a socket listening on `port`.
bool port_owned_by(int port, const std::vector<pid_t>& pids);

} // namespace llmctl
