#include "llmctl/signal.hpp"

#include <csignal>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace llmctl;

namespace {
pid_t spawn_sleeper() {
    pid_t pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    return pid;
}
} // namespace

TEST(Signal, ProvenIdentityIsSignalled) {
    pid_t pid = spawn_sleeper();
    auto id = identity_of(pid);
    ASSERT_TRUE(id);
    EXPECT_EQ(signal_identity(*id, SIGTERM), SignalResult::sent);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(WTERMSIG(status), SIGTERM);
    EXPECT_EQ(signal_identity(*id, SIGTERM), SignalResult::gone);
}

TEST(Signal, RecycledPidIsNeverSignalled) {
    pid_t pid = spawn_sleeper();
    auto id = identity_of(pid);
    ASSERT_TRUE(id);
    Identity stale = *id;
    stale.start_ticks -= 1; // the stored identity of an earlier process with this PID
    EXPECT_EQ(signal_identity(stale, SIGKILL), SignalResult::mismatch);
    // The process now holding the PID is untouched.
    usleep(20000);
    EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0);
    EXPECT_TRUE(is_alive(*id));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
}
