#include "llmctl/ports.hpp"

#include "llmctl/fd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace llmctl {

bool port_is_free(const std::string& host, int port) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family = AF_INET;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    std::string h = host == "localhost" ? "127.0.0.1" : host;
    if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        len = sizeof *v4;
    } else {
        std::string six = h.size() > 2 && h.front() == '[' ? h.substr(1, h.size() - 2) : h;
        if (inet_pton(AF_INET6, six.c_str(), &v6->sin6_addr) != 1) return false;
        family = AF_INET6;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        len = sizeof *v6;
    }
    Fd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return false;
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0;
}

std::optional<int> pick_port(const std::string& host, int lo, int hi, const std::set<int>& held) {
    for (int p = lo; p <= hi; ++p)
        if (!held.count(p) && port_is_free(host, p)) return p;
    return std::nullopt;
}

} // namespace llmctl
