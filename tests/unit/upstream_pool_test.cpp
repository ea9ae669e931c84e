// Kept-alive upstream connections: a second request to the same server goes over the first one's
// connection, and a kept connection the server has closed since is replaced without an error.
#include "llmctl/http_client.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace llmctl;

namespace {

// A one-thread HTTP server answering "ok" to each request it reads; with close_after_answer it
// closes each connection after its answer (yet says keep-alive, as an idle timeout would).
class TinyServer {
public:
    explicit TinyServer(bool close_after_answer) : close_(close_after_answer) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        ::listen(fd_, 8);
        thread_ = std::thread([this] { serve(); });
    }
    ~TinyServer() {
        ::shutdown(conn_.load(), SHUT_RDWR); // (the client keeps its connection open)
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    int port() const { return port_; }
    int connections() const { return connections_; }
    int requests() const { return requests_; }

private:
    void serve() {
        for (;;) {
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) return;
            conn_ = c;
            ++connections_;
            std::string in;
            char buf[4096];
            for (;;) {
                auto end = in.find("\r\n\r\n");
                if (end != std::string::npos) {
                    in.erase(0, end + 4); // GET: no body
                    ++requests_;
                    const char* answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
                    (void)!::write(c, answer, std::char_traits<char>::length(answer));
                    if (close_) break;
                    continue;
                }
                ssize_t n = ::read(c, buf, sizeof buf);
                if (n <= 0) break;
                in.append(buf, static_cast<std::size_t>(n));
            }
            conn_ = -1;
            ::close(c);
            if (!close_) return; // one connection is all this server takes
        }
    }
    bool close_;
    int fd_ = -1, port_ = 0;
    std::atomic<int> connections_{0}, requests_{0}, conn_{-1};
    std::thread thread_;
};

std::string get(int port) {
    UpstreamRequest r;
    r.method = "GET";
    r.path = "/x";
    std::string body;
    int status = 0;
    http_forward(
        server_url("127.0.0.1", port), r, HttpTimeouts{}, [&](const HttpHead& h) { status = h.status; },
        [&](std::string_view piece, bool) { body += piece; }, nullptr);
    return std::to_string(status) + " " + body;
}

} // namespace

TEST(UpstreamPoolTest, ASecondRequestUsesTheFirstOnesConnection) {
    TinyServer server(false);
    EXPECT_EQ(get(server.port()), "200 ok");
    EXPECT_EQ(get(server.port()), "200 ok");
    EXPECT_EQ(get(server.port()), "200 ok");
    EXPECT_EQ(server.requests(), 3);
    EXPECT_EQ(server.connections(), 1);
}

TEST(UpstreamPoolTest, AKeptConnectionTheServerClosedIsReplaced) {
    TinyServer server(true);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(get(server.port()), "200 ok");
    EXPECT_EQ(server.requests(), 3);
    EXPECT_EQ(server.connections(), 3);
}
