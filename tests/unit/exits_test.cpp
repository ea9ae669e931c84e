// The exit history's words for a wait status, the OOM rule, and the restart policy's arithmetic.

#include "llmctl/exits.hpp"
#include "llmctl/server_exit.hpp"
#include "llmctl/store.hpp"

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace llmctl;

namespace {

// A real wait status: a child that exits with `code`, or is killed by `sig`.
int wait_status_of(int code, int sig = 0) {
    pid_t pid = ::fork();
    if (pid == 0) {
        if (sig) {
            ::signal(sig, SIG_DFL);
            ::raise(sig);
        }
        ::_exit(code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}

} // namespace

TEST(Exits, AWaitStatusInWords) {
    auto e = exit_from_wait_status(wait_status_of(3), 0, false);
    EXPECT_EQ(e.cause, "exited with code 3");
    EXPECT_EQ(e.code, 3);
    EXPECT_FALSE(e.signal);
    EXPECT_TRUE(e.known);
    EXPECT_EQ(exit_from_wait_status(wait_status_of(0), 0, false).cause, "exited with code 0");
    e = exit_from_wait_status(wait_status_of(0, SIGTERM), 0, false);
    EXPECT_EQ(e.cause, "killed by SIGTERM");
    EXPECT_EQ(e.signal, SIGTERM);
    EXPECT_FALSE(e.code);
    // A core dump is the kernel's to decide (ulimit -c, core_pattern): the words follow the bit.
    int segv = W_EXITCODE(0, SIGSEGV) | WCOREFLAG;
    EXPECT_EQ(exit_from_wait_status(segv, 0, false).cause, "killed by SIGSEGV (core dumped)");
    EXPECT_TRUE(exit_from_wait_status(segv, 0, false).core);
}

TEST(Exits, LikelyOomKilledOnlyForASigkillWhileTheKernelCountedOne) {
    const int kill9 = wait_status_of(0, SIGKILL);
    EXPECT_EQ(exit_from_wait_status(kill9, 1, false).cause, "killed by SIGKILL (likely OOM-killed)");
    EXPECT_TRUE(exit_from_wait_status(kill9, 1, false).oom);
    EXPECT_EQ(exit_from_wait_status(kill9, 0, false).cause, "killed by SIGKILL") << "no OOM kill counted";
    EXPECT_EQ(exit_from_wait_status(kill9, -1, false).cause, "killed by SIGKILL") << "count unknown";
    EXPECT_EQ(exit_from_wait_status(kill9, 2, true).cause, "killed by SIGKILL") << "a stop's SIGKILL";
    EXPECT_FALSE(exit_from_wait_status(wait_status_of(0, SIGTERM), 3, false).oom) << "only SIGKILL";
}

TEST(Exits, PolicyRestarts) {
    EXPECT_FALSE(policy_restarts("no", 1));
    EXPECT_FALSE(policy_restarts("no", std::nullopt));
    EXPECT_TRUE(policy_restarts("on-failure", 1));
    EXPECT_TRUE(policy_restarts("on-failure", std::nullopt)) << "a signal is a failure";
    EXPECT_FALSE(policy_restarts("on-failure", 0));
    EXPECT_TRUE(policy_restarts("always", 0));
}

TEST(Exits, RestartDelayDoublesUpToFiveMinutesWithATenthOfJitter) {
    EXPECT_EQ(restart_delay_for(Millis(1000), 0, 0.0), Millis(1000));
    EXPECT_EQ(restart_delay_for(Millis(1000), 3, 0.0), Millis(8000));
    EXPECT_EQ(restart_delay_for(Millis(1000), 3, 1.0), Millis(8800));
    EXPECT_EQ(restart_delay_for(Millis(1000), 3, -1.0), Millis(7200));
    EXPECT_EQ(restart_delay_for(Millis(1000), 20, 0.0), Millis(300'000));
    EXPECT_EQ(restart_delay_for(Millis(1000), 1000, 1.0), Millis(300'000)) << "never beyond 5 minutes";
    EXPECT_EQ(restart_delay_for(Millis(0), 5, 1.0), Millis(0));
}

TEST(Exits, AKnownCauseReplacesAnUnknownOneAndTheHistoryIsBounded) {
    char tmpl[] = "/tmp/llmctl-exits-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    {
        auto s = Store::open_write(dir + "/state.db");
        ExitRecord unknown;
        unknown.name = "a";
        unknown.instance = "i1";
        unknown.pid = 10;
        unknown.at = 1000;
        unknown.cause = "cause unknown (no monitor saw it)";
        record_exit(s, unknown);
        ExitRecord seen = exit_from_wait_status(wait_status_of(0, SIGSEGV), 0, false);
        seen.name = "a";
        seen.instance = "i1";
        seen.pid = 10;
        seen.at = 1001;
        seen.action = "restarted";
        record_exit(s, seen);
        auto e = exit_of(s, "i1");
        ASSERT_TRUE(e);
        EXPECT_EQ(e->cause, "killed by SIGSEGV");
        EXPECT_EQ(e->action, "restarted");
        record_exit(s, unknown); // an unknown one never replaces a known one
        EXPECT_EQ(exit_of(s, "i1")->cause, "killed by SIGSEGV");
        EXPECT_EQ(restarts_since(s, "a", 0), 1);
        forget_restarts(s, "a");
        EXPECT_EQ(restarts_since(s, "a", 0), 0);
        for (int i = 0; i < k_exits_kept + 10; ++i) {
            ExitRecord x = unknown;
            x.instance = "n" + std::to_string(i);
            x.name = i % 2 ? "b" : "c";
            record_exit(s, x);
        }
        auto q = s.prepare("SELECT COUNT(*) FROM exits");
        ASSERT_TRUE(q.step());
        EXPECT_EQ(q.i64(0), k_exits_kept);
        auto last = last_exits(s);
        EXPECT_EQ(last.size(), 2u) << "a's exit was trimmed away";
        EXPECT_EQ(last["b"].instance, "n" + std::to_string(k_exits_kept + 9));
    }
    std::filesystem::remove_all(dir);
}
