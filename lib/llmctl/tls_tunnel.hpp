#pragma once
// An https:// connection without TLS in this process: llmctl-tls (a helper program beside llmctl,
// or in ../libexec/llmctl/) makes it and relays it onto a socket pair, whose other end is what
// the caller gets: plain HTTP goes over it as over a TCP connection, and a command that never
// uses TLS maps no TLS library. A connection the helper cannot make is answered by the helper
// itself (tls/main.cpp): HTTP 502, or 504 for a timeout, with an X-Llmctl-Tunnel header naming
// what failed (connect | timeout | tls) and an OpenAI-style error saying why.

#include "llmctl/address.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/fd.hpp"
#include "llmctl/units.hpp"

namespace llmctl {

// The plain end of a new TLS connection to url.host:url.port (non-blocking, close-on-exec). The
// helper is nobody's child to wait for; it ends when this end is closed, or the server's. Throws
// Error(failure) when the helper cannot be run.
Fd open_tls_tunnel(const Url& url, Millis connect_timeout);

// The header of the helper's own answers.
inline constexpr const char* k_tunnel_header = "X-Llmctl-Tunnel";

// The helper's answer (its header's value, its body) as the error a command reports: exit 5
// (server) when it could not connect, 6 for a timeout, 1 for TLS itself; its hint the helper's.
Error tunnel_error(const std::string& failure, const std::string& body);

} // namespace llmctl
