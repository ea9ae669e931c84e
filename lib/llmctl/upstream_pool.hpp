#pragma once
// The kept-alive connections of this process to model servers, by address: an answer read to its
// end on a keep-alive connection leaves the connection here for the next request to the same
// server (a gateway relays thousands of requests a second to the same few servers; a connection
// each was a connect, a close and the server's accept each).

#include "llmctl/fd.hpp"

#include <string>

namespace llmctl {

// A kept connection to host:port that still looks open (nothing to read, no hangup), or an
// invalid Fd.
Fd take_kept_connection(const std::string& host, int port);

// Keeps `fd` for the next request to host:port (at most 256 per address; one idle for over 15 s
// is closed at the next take or keep).
void keep_connection(const std::string& host, int port, Fd fd);

} // namespace llmctl
