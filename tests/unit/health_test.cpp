#include "llmctl/health.hpp"
#include "llmctl/spawn.hpp"

#include <csignal>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace llmctl;

// Ports 20950-20959 belong to this file.
TEST(Health, LoadingThenReadyAndOwnedByTheServer) {
    const int port = 20950;
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
