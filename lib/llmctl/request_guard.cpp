#include "llmctl/request_guard.hpp"

#include "llmctl/address.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace llmctl {

namespace {

// "HOST[:PORT]" split; an IPv6 literal keeps no brackets. Port 0 when none is given.
std::pair<std::string, int> split_host_port(std::string_view h) {
    std::string host(h);
    int port = 0;
    auto colon = host.rfind(':');
    bool bracketed = !host.empty() && host[0] == '[';
    if (colon != std::string::npos && (!bracketed || colon > host.find(']'))) {
        if (host.find(':') != colon && !bracketed) return {host, 0}; // a bare IPv6 literal
        try {
            port = std::stoi(host.substr(colon + 1));
        } catch (...) {
            port = -1;
        }
        host = host.substr(0, colon);
    }
    return {bare_host(host), port};
}

bool lower_equal(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

bool host_allowed(const GuardRules& r, std::string_view header) {
    auto [host, port] = split_host_port(header);
    if (port != 0 && port != r.listen_port) return false;
    if (lower_equal(host, bare_host(r.listen_host))) return true;
    for (const auto& a : r.allowed_hosts)
        if (lower_equal(host, a)) return true;
    // A loopback or wildcard listener answers to the names of this machine's own addresses.
    bool local_listen = is_wildcard(r.listen_host) || connect_host(r.listen_host) == "127.0.0.1" || connect_host(r.listen_host) == "::1";
    if (!local_listen) return false;
    if (lower_equal(host, "localhost")) return true;
    return valid_host(host) && host != "localhost" &&
           (is_wildcard(r.listen_host) ? is_local_address(host) : host == "127.0.0.1" || host == "::1");
}

} // namespace

bool origin_allowed(const GuardRules& r, std::string_view origin) {
    for (const auto& o : r.cors_origins)
        if (o == "*" || lower_equal(o, origin)) return true;
    return false;
}

std::optional<ApiError> check_host_and_origin(const GuardRules& r, std::string_view host, std::string_view origin) {
    if (host.empty()) return ApiError{400, "the request has no Host header", "invalid_request_error", "", std::nullopt};
    if (!host_allowed(r, host))
        return ApiError{403,
                        fmt::format("Host \"{}\" is not this gateway's address; add the name to [serve] allowed_hosts if clients use it",
                                    std::string(host)),
                        "permission_error", "host_not_allowed", std::nullopt};
    // The gateway's own origin (its dashboard's calls, also through an HTTPS reverse proxy that
    // keeps the Host): the Host passed the check above, so an Origin naming the same address is
    // this page, not another site.
    const bool own = lower_equal(origin, "http://" + std::string(host)) || lower_equal(origin, "https://" + std::string(host));
    if (!origin.empty() && !own && !origin_allowed(r, origin))
        return ApiError{403,
                        fmt::format("cross-site requests from \"{}\" are not allowed; add the origin to [serve] cors_origins to allow it",
                                    std::string(origin)),
                        "permission_error", "origin_not_allowed", std::nullopt};
    return std::nullopt;
}

std::optional<ApiError> check_api_key(const GuardRules& r, std::string_view authorization) {
    if (r.api_key.empty()) return std::nullopt;
    constexpr std::string_view scheme = "Bearer ";
    std::string_view given;
    if (authorization.size() > scheme.size() && lower_equal(authorization.substr(0, scheme.size()), scheme))
        given = authorization.substr(scheme.size());
    // Constant time over the expected key's length: the time says nothing of how much matched.
    unsigned char diff = given.size() == r.api_key.size() ? 0 : 1;
    for (std::size_t i = 0; i < r.api_key.size(); ++i) diff |= static_cast<unsigned char>(r.api_key[i] ^ (i < given.size() ? given[i] : 0));
    if (diff == 0) return std::nullopt;
    return ApiError{
        401, authorization.empty() ? "this gateway needs an API key: send Authorization: Bearer KEY" : "the API key is not this gateway's",
        "invalid_request_error", "invalid_api_key", std::nullopt};
}

} // namespace llmctl
