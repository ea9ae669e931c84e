#include "llmctl/health.hpp"

#include "llmctl/address.hpp"
#include "llmctl/files.hpp"
#include "llmctl/process.hpp"
#include "llmctl/strings.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <fmt/format.h>
#include <arpa/inet.h>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <unistd.h>

namespace llmctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// "connection refused", "no answer within 1s", … for a failed exchange.
std::string failure_words(const boost::system::error_code& ec, Millis timeout) {
    if (ec == asio::error::operation_aborted || ec == beast::error::timeout) return "no answer within " + format_duration(timeout);
    if (ec == asio::error::connection_refused) return "connection refused (nothing listens there)";
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset)
        return "the connection was closed without an answer";
    return ec.message();
}

// Connects to a server bound to `host` (a wildcard as loopback) within `timeout`, then runs
// `then` on the connected stream (nothing: a TCP probe). Returns the first error, if any.
template <class Then>
boost::system::error_code connect_then(const std::string& host, int port, Millis timeout, Then then) {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(connect_host(host), ec);
    if (ec) return ec;
    boost::system::error_code failed = asio::error::operation_aborted;
    stream.expires_after(timeout);
    stream.async_connect(asio::ip::tcp::endpoint(addr, static_cast<unsigned short>(port)), [&](boost::system::error_code e) {
        if ((failed = e)) return;
        then(stream, failed);
    });
    ioc.run();
    return failed;
}

Probe probe_tcp(const std::string& host, int port, Millis timeout) {
    Probe p;
    auto failed = connect_then(host, port, timeout, [](beast::tcp_stream&, boost::system::error_code&) {});
    p.ok = !failed;
    p.seen = p.ok ? "a TCP connection was accepted" : "TCP connect: " + failure_words(failed, timeout);
    return p;
}

Probe probe_http(const std::string& host, int port, const std::string& path, Millis timeout) {
    Probe p;
    beast::flat_buffer buf;
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, fmt::format("{}:{}", url_host(connect_host(host)), port));
    req.set(http::field::user_agent, "llmctl");
    req.set(http::field::connection, "close");
    http::response<http::string_body> res;
    auto failed = connect_then(host, port, timeout, [&](beast::tcp_stream& stream, boost::system::error_code& failed) {
        http::async_write(stream, req, [&](boost::system::error_code e2, std::size_t) {
            if ((failed = e2)) return;
            http::async_read(stream, buf, res, [&](boost::system::error_code e3, std::size_t) {
                if ((failed = e3)) return;
                p.http = static_cast<int>(res.result_int());
            });
        });
    });
    p.ok = p.http == 200;
    p.seen =
        p.http ? fmt::format("GET {} answered HTTP {}", path, p.http) : fmt::format("GET {}: {}", path, failure_words(failed, timeout));
    return p;
}

} // namespace

Probe probe_ready(const std::string& host, int port, const std::string& health, Millis timeout) {
    return health == "tcp" ? probe_tcp(host, port, timeout) : probe_http(host, port, health, timeout);
}

int probe_health(const std::string& host, int port, const std::string& path, Millis timeout) {
    return probe_http(host, port, path, timeout).http;
}

namespace {

// Parses /proc/net/tcp{,6}'s local address ("0100007F" or 32 hex digits: 32-bit words in host
// order) and says whether a listener there competes with one on `want` (empty: any address).
bool competes(const std::string& hex, const std::optional<std::array<unsigned char, 16>>& want) {
    if (!want) return true;
    std::array<unsigned char, 16> got{};
    if (hex.size() == 8) {
        std::uint32_t w = static_cast<std::uint32_t>(std::strtoul(hex.c_str(), nullptr, 16));
        got[10] = got[11] = 0xff; // as ::ffff:a.b.c.d
        std::memcpy(got.data() + 12, &w, 4);
    } else if (hex.size() == 32) {
        for (int i = 0; i < 4; ++i) {
            std::uint32_t w = static_cast<std::uint32_t>(std::strtoul(hex.substr(i * 8, 8).c_str(), nullptr, 16));
            std::memcpy(got.data() + i * 4, &w, 4);
        }
    } else {
        return true;
    }
    static const std::array<unsigned char, 16> any6{};
    static const std::array<unsigned char, 16> any4{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
    return got == any6 || got == any4 || *want == any6 || *want == any4 || got == *want;
}

std::optional<std::array<unsigned char, 16>> address_of(const std::string& host) {
    if (host.empty()) return std::nullopt;
    std::string h = host == "localhost" ? "127.0.0.1" : host;
    if (h.size() > 2 && h.front() == '[') h = h.substr(1, h.size() - 2);
    std::array<unsigned char, 16> a{};
    in_addr v4{};
    if (::inet_pton(AF_INET, h.c_str(), &v4) == 1) {
        a[10] = a[11] = 0xff;
        std::memcpy(a.data() + 12, &v4, 4);
        return a;
    }
    if (::inet_pton(AF_INET6, h.c_str(), a.data()) == 1) return a;
    return std::nullopt;
}

} // namespace

std::set<unsigned long> listening_inodes(int port, const std::string& host) {
    std::set<unsigned long> out;
    auto want = address_of(host);
    for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        auto text = read_file(file);
        if (!text) continue;
        std::istringstream in(*text);
        std::string line;
        std::getline(in, line); // header
        while (std::getline(in, line)) {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            std::istringstream f(line);
            std::string sl, local, remote, st, q, tr, retr, uid, tmo, inode;
            if (!(f >> sl >> local >> remote >> st >> q >> tr >> retr >> uid >> tmo >> inode)) continue;
            if (st != "0A") continue; // LISTEN
            auto colon = local.rfind(':');
            if (colon == std::string::npos) continue;
            if (std::strtol(local.c_str() + colon + 1, nullptr, 16) != port) continue;
            if (!competes(local.substr(0, colon), want)) continue;
            out.insert(std::strtoul(inode.c_str(), nullptr, 10));
        }
    }
    return out;
}

namespace {

// The inodes among `inodes` that sockets of process `pid` hold.
void sockets_of(pid_t pid, const std::set<unsigned long>& inodes, std::set<unsigned long>& seen) {
    std::string dir = "/proc/" + std::to_string(pid) + "/fd/";
    for (const auto& fd : list_dir(dir)) {
        char target[64];
        ssize_t n = ::readlink((dir + fd).c_str(), target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = '\0';
        unsigned long ino = 0;
        if (std::sscanf(target, "socket:[%lu]", &ino) == 1 && inodes.count(ino)) seen.insert(ino);
    }
}

} // namespace

PortListeners port_listeners(const std::string& host, int port, const std::vector<pid_t>& pids) {
    PortListeners out;
    auto inodes = listening_inodes(port, host);
    if (inodes.empty()) return out;
    std::set<unsigned long> seen;
    for (pid_t pid : pids) sockets_of(pid, inodes, seen);
    out.ours = !seen.empty();
    out.stranger = seen.size() < inodes.size();
    return out;
}

std::optional<pid_t> listening_pid(const std::string& host, int port) {
    auto inodes = listening_inodes(port, host);
    if (inodes.empty()) return std::nullopt;
    for (pid_t pid : list_pids()) {
        std::set<unsigned long> seen;
        sockets_of(pid, inodes, seen);
        if (!seen.empty()) return pid;
    }
    return std::nullopt;
}

} // namespace llmctl
