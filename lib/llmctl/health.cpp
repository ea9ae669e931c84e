#include "llmctl/health.hpp"

#include "llmctl/strings.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <dirent.h>
#include <sstream>
#include <unistd.h>

namespace llmctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

int probe_health(const std::string& host, int port, const std::string& path, Millis timeout) {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    beast::flat_buffer buf;
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, host + ":" + std::to_string(port));
    req.set(http::field::user_agent, "llmctl");
    req.set(http::field::connection, "close");
    http::response<http::string_body> res;
    int status = 0;
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
    if (ec) return 0;
    stream.expires_after(timeout);
    stream.async_connect(asio::ip::tcp::endpoint(addr, static_cast<unsigned short>(port)), [&](boost::system::error_code e) {
        if (e) return;
        http::async_write(stream, req, [&](boost::system::error_code e2, std::size_t) {
            if (e2) return;
            http::async_read(stream, buf, res, [&](boost::system::error_code e3, std::size_t) {
                if (!e3) status = static_cast<int>(res.result_int());
            });
        });
    });
    ioc.run();
    return status;
}

std::set<unsigned long> listening_inodes(int port) {
    std::set<unsigned long> out;
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
            out.insert(std::strtoul(inode.c_str(), nullptr, 10));
        }
    }
    return out;
}

bool port_owned_by(int port, const std::vector<pid_t>& pids) {
    auto inodes = listening_inodes(port);
    if (inodes.empty()) return false;
    for (pid_t pid : pids) {
        std::string dir = "/proc/" + std::to_string(pid) + "/fd";
        DIR* d = ::opendir(dir.c_str());
        if (!d) continue;
        bool found = false;
        while (auto* e = ::readdir(d)) {
            if (e->d_name[0] == '.') continue;
            char target[64];
            ssize_t n = ::readlinkat(::dirfd(d), e->d_name, target, sizeof target - 1);
            if (n <= 0) continue;
            target[n] = '\0';
            unsigned long ino = 0;
            if (std::sscanf(target, "socket:[%lu]", &ino) == 1 && inodes.count(ino)) {
                found = true;
                break;
            }
        }
        ::closedir(d);
        if (found) return true;
    }
    return false;
}

} // namespace llmctl
