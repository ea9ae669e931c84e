#pragma once
// The systemd notification protocol (sd_notify(3)): a service of Type=notify tells systemd it is
// ready, reloading or stopping by sending "KEY=VALUE" lines in one datagram to the unix socket
// named by $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace). Without the variable
// this does nothing, so the same binary runs under systemd and at a terminal.

#include <string>

namespace llmctl {

// Sends `state` (e.g. "READY=1\nSTATUS=listening on http://127.0.0.1:8080") to systemd, if
// $NOTIFY_SOCKET names a socket. Returns false when it was set but the message could not be sent.
bool notify_systemd(const std::string& state);

} // namespace llmctl
