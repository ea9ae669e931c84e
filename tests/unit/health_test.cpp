#include "llmctl/health.hpp"
#include "llmctl/spawn.hpp"

#include <arpa/inet.h>
#include <csignal>
#include <cstdlib>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace llmctl;

namespace {
int port_offset() {
    const char* e = std::getenv("LLMCTL_TEST_PORT_OFFSET");
    return e ? std::atoi(e) : 0;
}
} // namespace

// Ports 20950-20959 belong to this file (plus $LLMCTL_TEST_PORT_OFFSET, for two checkouts testing at once).
TEST(Health, LoadingThenReadyAndOwnedByTheServer) {
    const int port = 20950 + port_offset();
    SpawnRequest req;
    req.argv = {MOCK_SERVER_BIN, "--port", std::to_string(port), "--startup-delay", "400ms"};
    req.log_path = "/tmp/llmctl-health-test.log";
    Identity id = spawn_server(req);
    int status = 0;
    for (int i = 0; i < 500 && status == 0; ++i) {
        status = probe_health("127.0.0.1", port, "/health", Millis(500));
        if (status == 0) usleep(10'000);
    }
    EXPECT_EQ(status, 503); // listening, still "loading"
    EXPECT_TRUE(port_owned_by(port, {id.pid}));
    EXPECT_FALSE(port_owned_by(port, {getpid()}));
    for (int i = 0; i < 500 && status != 200; ++i) {
        status = probe_health("127.0.0.1", port, "/health", Millis(500));
        if (status != 200) usleep(10'000);
    }
    EXPECT_EQ(status, 200);
    kill(id.pid, SIGKILL);
    waitpid(id.pid, nullptr, 0);
    std::remove(req.log_path.c_str());
    EXPECT_EQ(probe_health("127.0.0.1", port, "/health", Millis(200)), 0);
    EXPECT_TRUE(listening_inodes(port).empty());
}

namespace {
int listen_on(const char* addr, int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, addr, &sa.sin_addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 1) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}
} // namespace

TEST(Health, ListenersAreOursOrStrangersPerAddress) {
    const int port = 20951 + port_offset();
    int fd = listen_on("127.0.0.1", port);
    ASSERT_GE(fd, 0);
    auto mine = port_listeners("127.0.0.1", port, {getpid()});
    EXPECT_TRUE(mine.ours);
    EXPECT_FALSE(mine.stranger);
    auto other = port_listeners("127.0.0.1", port, {});
    EXPECT_FALSE(other.ours);
    EXPECT_TRUE(other.stranger);
    // A listener on another address does not compete with a server on 127.0.0.2.
    EXPECT_FALSE(port_listeners("127.0.0.2", port, {}).stranger);
    EXPECT_EQ(listening_inodes(port, "127.0.0.2").size(), 0u);
    close(fd);
    // A wildcard listener competes with every address.
    fd = listen_on("0.0.0.0", port);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(port_listeners("127.0.0.2", port, {}).stranger);
    EXPECT_TRUE(port_listeners("::1", port, {}).stranger);
    close(fd);
}
