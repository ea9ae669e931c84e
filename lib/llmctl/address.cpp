#include "llmctl/address.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/fd.hpp"

#include <fmt/format.h>

#include <cstdlib>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace llmctl {

namespace {

bool is_ipv4(const std::string& h) {
    in_addr a{};
    return ::inet_pton(AF_INET, h.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& h) {
    in6_addr a{};
    return ::inet_pton(AF_INET6, h.c_str(), &a) == 1;
}

} // namespace

std::string bare_host(const std::string& host) {
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
    return host;
}

bool valid_host(const std::string& host) {
    std::string h = bare_host(host);
    if (h == "localhost") return host == h;
    if (h != host) return is_ipv6(h); // brackets only around IPv6
    return is_ipv4(h) || is_ipv6(h);
}

bool is_wildcard(const std::string& host) {
    std::string h = bare_host(host);
    if (is_ipv4(h)) return h == "0.0.0.0";
    in6_addr a{};
    return ::inet_pton(AF_INET6, h.c_str(), &a) == 1 && IN6_IS_ADDR_UNSPECIFIED(&a);
}

bool is_local_address(const std::string& host) {
    std::string h = connect_host(host);
    sockaddr_storage ss{};
    socklen_t len = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        len = sizeof *v4;
    } else if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        len = sizeof *v6;
    } else {
        return false;
    }
    Fd fd(::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return false;
    return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0; // port 0: any; EADDRNOTAVAIL if not ours
}

std::string connect_host(const std::string& host) {
    std::string h = bare_host(host);
    if (h == "localhost") return "127.0.0.1";
    if (is_wildcard(h)) return is_ipv6(h) ? "::1" : "127.0.0.1";
    return h;
}

std::string url_host(const std::string& host) {
    std::string h = bare_host(host);
    return h.find(':') != std::string::npos ? "[" + h + "]" : h;
}

std::string http_url(const std::string& host, int port) {
    // "localhost" as the user wrote it: it connects.
    std::string h = bare_host(host) == "localhost" ? "localhost" : url_host(connect_host(host));
    return "http://" + h + ":" + std::to_string(port);
}

Url parse_url(const std::string& url) {
    Url u;
    std::string rest;
    if (url.rfind("http://", 0) == 0) {
        rest = url.substr(7);
    } else if (url.rfind("https://", 0) == 0) {
        rest = url.substr(8);
        u.https = true;
        u.port = 443;
    } else {
        throw Error(Exit::config, fmt::format("url \"{}\" is not http://HOST[:PORT][/PATH] or https://HOST[:PORT][/PATH]", url));
    }
    auto slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    u.base = slash == std::string::npos ? "" : rest.substr(slash);
    while (!u.base.empty() && u.base.back() == '/') u.base.pop_back();
    auto colon = hostport.rfind(':');
    if (colon != std::string::npos && (hostport.front() != '[' || hostport[colon - 1] == ']')) {
        u.host = hostport.substr(0, colon);
        u.port = std::atoi(hostport.c_str() + colon + 1);
    } else {
        u.host = hostport;
    }
    if (u.host.size() > 2 && u.host.front() == '[') u.host = u.host.substr(1, u.host.size() - 2);
    if (u.host.empty() || u.port <= 0 || u.port > 65535) throw Error(Exit::config, fmt::format("url \"{}\" has no valid host:port", url));
    return u;
}

Url server_url(const std::string& host, int port) {
    Url u;
    u.host = connect_host(host);
    u.port = port;
    return u;
}

std::optional<std::pair<std::string, int>> parse_listen_address(const std::string& s) {
    std::string host = "127.0.0.1", port = s;
    auto colon = s.rfind(':');
    if (colon != std::string::npos) {
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
        if (host.empty()) host = "127.0.0.1";
        if (host.front() == '[') {
            if (host.back() != ']') return std::nullopt;
        } else if (host.find(':') != std::string::npos)
            return std::nullopt; // a bare IPv6 literal needs brackets before its port
    }
    if (!valid_host(host) || port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    int n = std::atoi(port.c_str());
    if (n > 65535) return std::nullopt;
    return std::pair{bare_host(host), n};
}

bool is_loopback(const std::string& host) {
    std::string h = bare_host(host);
    return h == "localhost" || h == "::1" || h.rfind("127.", 0) == 0;
}

} // namespace llmctl
