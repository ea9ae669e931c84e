#include "llmctl/fd.hpp"
#include "llmctl/ports.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

using namespace llmctl;

namespace {
// Unit tests use ports 20900-20949 (see tests/CMakeLists.txt for the integration ranges).
Fd listen_on(int port) {
    Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(fd.get(), 1), 0);
    return fd;
}
} // namespace

TEST(Ports, ForeignListenerIsSkipped) {
    auto l = listen_on(20900);
    EXPECT_FALSE(port_is_free("127.0.0.1", 20900));
    EXPECT_EQ(pick_port("127.0.0.1", 20900, 20910, {}), 20901);
}

TEST(Ports, HeldPortsAreSkipped) {
    EXPECT_EQ(pick_port("127.0.0.1", 20920, 20930, {20920, 20921}), 20922);
    EXPECT_EQ(pick_port("127.0.0.1", 20930, 20931, {20930, 20931}), std::nullopt);
}

TEST(Ports, BadHostIsNotFree) { EXPECT_FALSE(port_is_free("not-an-address", 20940)); }
