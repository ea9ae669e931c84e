#include "llmctl/exec_command.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace llmctl;

namespace {
// The raw wait status of a child that runs `body`.
template <class F>
int wait_status_of(F body) {
    pid_t pid = fork();
    if (pid == 0) {
        body();
        _exit(0);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    return ws;
}
} // namespace

TEST(ExecCommand, ExitStatusIsTheExitCode) {
    EXPECT_EQ(exit_status_of(wait_status_of([] { _exit(0); })), 0);
    EXPECT_EQ(exit_status_of(wait_status_of([] { _exit(3); })), 3);
}

TEST(ExecCommand, SignalIs128PlusN) {
    EXPECT_EQ(exit_status_of(wait_status_of([] { raise(SIGTERM); })), 128 + SIGTERM);
    EXPECT_EQ(exit_status_of(wait_status_of([] { raise(SIGKILL); })), 128 + SIGKILL);
}

TEST(ExecCommand, FindCommand) {
    EXPECT_EQ(find_command("sh").status, 0);
    EXPECT_FALSE(find_command("sh").path.empty());
    auto missing = find_command("llmctl-no-such-command-xyz");
    EXPECT_EQ(missing.status, 127);
    EXPECT_EQ(missing.error, "command not found");
    EXPECT_EQ(find_command("/etc/passwd").status, 126);
}

TEST(ExecCommand, ServerEnvironment) {
    auto env = server_environment("http://127.0.0.1:8080", 8080);
    EXPECT_EQ(env.at("LLMCTL_URL"), "http://127.0.0.1:8080");
    EXPECT_EQ(env.at("OPENAI_BASE_URL"), "http://127.0.0.1:8080/v1");
    EXPECT_EQ(env.at("LLMCTL_PORT"), "8080");
}

TEST(ExecCommand, RunCommandPassesEnvironmentAndStatus) {
    auto r = run_command(find_command("sh").path, {"-c", "test \"$LLMCTL_PORT\" = 9 && exit 7"}, {{"LLMCTL_PORT", "9"}});
    EXPECT_TRUE(r.error.empty());
    EXPECT_EQ(r.status, 7);
}
