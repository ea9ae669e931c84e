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
// is closed at the next take, keep or close_idle_connections).
void keep_connection(const std::string& host, int port, Fd fd);

// The connections callers keep for themselves between requests (serve's client connections, a
// KeptConnection each), counted by address: one more may be kept while fewer than `cap` are (the
// model's max_concurrent). A server that gives each connection a thread (llama-server's HTTP
// pool) then sees at most twice its slots' worth of connections from this process, pool
// included, however many clients come. A claim that returned true is released once.
bool claim_kept_connection(const std::string& host, int port, int cap);
void release_kept_connection(const std::string& host, int port);

// Closes the connections idle for over 15 s (a gateway calls it once a second: without it, the
// connections of a burst would stay open until the next request).
void close_idle_connections();

} // namespace llmctl
