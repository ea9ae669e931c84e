#pragma once
// Readiness: an HTTP health probe (Boost.Beast, bounded in time) and the check that the
// port's listening socket belongs to the server's own processes (llama-server sets
// SO_REUSEPORT, so a stranger can share a port and answer the probe).

#include "llmctl/units.hpp"

#include <optional>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace llmctl {

// What one readiness probe saw, in words a person can act on.
struct Probe {
    bool ok = false;  // ready: HTTP 200, or a TCP connection for health = "tcp"
    int http = 0;     // the HTTP status, 0 when none came
    std::string seen; // "GET /health answered HTTP 404", "GET /health: connection refused", …
};

// The readiness check of a server bound to `host`: `health` is an HTTP path (GET, ready on 200)
// or "tcp" (ready when a connection is accepted). Bounded by `timeout`.
Probe probe_ready(const std::string& host, int port, const std::string& health, Millis timeout);

// GET http://host:port/path; the HTTP status, or 0 when nothing answered within `timeout`.
int probe_health(const std::string& host, int port, const std::string& path, Millis timeout);

// Inodes of TCP sockets listening on `port` (from /proc/net/tcp and tcp6). With `host` (an IP
// address), only listeners that compete with a server bound there: same address or wildcard.
std::set<unsigned long> listening_inodes(int port, const std::string& host = "");

// Who listens on `port`: some process in `pids`, and/or anything else (a stranger).
struct PortListeners {
    bool ours = false;
    bool stranger = false;
};
PortListeners port_listeners(const std::string& host, int port, const std::vector<pid_t>& pids);
// A process holding a socket that listens on `port` (competing with `host`), found by scanning
// every process's fds; nullopt when none of those this user can see. For error messages.
std::optional<pid_t> listening_pid(const std::string& host, int port);

// True when some process in `pids` holds a socket listening on `port`.
inline bool port_owned_by(int port, const std::vector<pid_t>& pids) { return port_listeners("", port, pids).ours; }

} // namespace llmctl
