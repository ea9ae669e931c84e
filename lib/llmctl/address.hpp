#pragma once
// Hosts as the config gives them ("127.0.0.1", "::1", "0.0.0.0", "::", "localhost") and the
// forms the rest needs: an address a client can connect to, and a URL a person can paste or
// llmctl can connect to.

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace llmctl {

// True for an IPv4 or IPv6 literal (an IPv6 one may be in brackets) or "localhost": what a server
// can be told to bind and llmctl can probe without a resolver.
bool valid_host(const std::string& host);

// The host without the brackets an IPv6 literal may carry: "[::1]" -> "::1".
std::string bare_host(const std::string& host);

// True for an address that binds every interface: 0.0.0.0 or ::.
bool is_wildcard(const std::string& host);

// True when `host` is an address of this machine (a socket can be bound to it): loopback, a
// wildcard, or an interface's address. A connection to it never leaves the machine.
bool is_local_address(const std::string& host);

// The address a client on this machine connects to for a server bound to `host`: a wildcard
// becomes the loopback of its family, "localhost" 127.0.0.1, brackets go.
std::string connect_host(const std::string& host);

// The host as it goes before ":PORT" (an HTTP Host header, a URL, a message): an IPv6 literal in
// brackets ("::1" -> "[::1]"), anything else as it is.
std::string url_host(const std::string& host);

// "http://HOST:PORT" for a server bound to `host`, usable as is: an IPv6 literal in brackets, a
// wildcard as the loopback of its family ("http://[::1]:8080", "http://127.0.0.1:8080").
std::string http_url(const std::string& host, int port);

// A listen address: "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" (the last two on 127.0.0.1), as
// {host without brackets, port}; nullopt for anything else. Port 0 means any free port.
std::optional<std::pair<std::string, int>> parse_listen_address(const std::string& s);

// True for a loopback address or "localhost": only this machine can connect.
bool is_loopback(const std::string& host);

// How an https:// url's connections are made (by llmctl-tls: see tls_tunnel.hpp).
struct TlsSettings {
    std::string ca_file, client_cert, client_key; // "" = the system's CAs; no client certificate
    bool verify = true;
    bool operator==(const TlsSettings&) const = default;
};

// Splits "http://host:port/base" (or https://) into its parts; throws Error(config) for other
// forms. The port defaults to 80 (443 for https).
struct Url {
    std::string host;
    int port = 80;
    std::string base; // path prefix without trailing '/'
    bool https = false;
    TlsSettings tls; // with https: set by the caller from the model (parse_url leaves the defaults)
    std::vector<std::pair<std::string, std::string>> headers; // sent with every request (an external model's)

    std::string scheme() const { return https ? "https" : "http"; }
};
Url parse_url(const std::string& url);

// The url llmctl connects to for a server it runs, bound to `host` at `port` (connect_host).
Url server_url(const std::string& host, int port);

} // namespace llmctl
