#include "llmctl/errors.hpp"
#include "llmctl/lock.hpp"
#include "temp_dir.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <gtest/gtest.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

using namespace llmctl;

namespace {

class LockTest : public ::testing::Test {
protected:
    // In a child process (flock is per open file description: a second acquire in this process
    // would conflict too, but a child shows the cross-process case): 0 when it got the lock
    // within `timeout`, 6 when it timed out naming `holder`, 1 otherwise.
    int try_in_child(Millis timeout, pid_t holder) {
        pid_t pid = fork();
        if (pid == 0) {
            try {
                auto lock = FileLock::acquire(path_, timeout);
                _exit(0);
            } catch (const Error& e) {
                bool named = std::string(e.what()).find("held by pid " + std::to_string(holder)) != std::string::npos;
                _exit(e.code() == Exit::timeout && named ? 6 : 1);
            }
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    llmctl::test_support::TempDir dir_{"llmctl-lock"};
    std::string path_ = dir_.path + "/state.lock";
};

} // namespace

TEST_F(LockTest, AWaiterTimesOutNamingTheHolderThenGetsTheReleasedLock) {
    auto lock = FileLock::acquire(path_, Millis(1000));
    EXPECT_EQ(try_in_child(Millis(50), getpid()), 6);
    lock.release();
    EXPECT_EQ(try_in_child(Millis(1000), getpid()), 0);
}

TEST_F(LockTest, TheLockGoesWithItsHolder) {
    { auto lock = FileLock::acquire(path_, Millis(1000)); } // destructor releases
    EXPECT_EQ(try_in_child(Millis(1000), getpid()), 0);
    // A holder that dies (even by SIGKILL) leaves no stale lock.
    pid_t pid = fork();
    if (pid == 0) {
        auto lock = FileLock::acquire(path_, Millis(1000));
        pause();
        _exit(0);
    }
    // Wait until the child holds it (it writes its pid into the file), then kill it.
    for (int i = 0; i < 2000 && try_in_child(Millis(1), pid) != 6; ++i) usleep(1000);
    EXPECT_EQ(try_in_child(Millis(1), pid), 6);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    EXPECT_EQ(try_in_child(Millis(1000), getpid()), 0);
}
