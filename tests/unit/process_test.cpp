#include "llmctl/process.hpp"

#include <algorithm>
#include <csignal>
#include <gtest/gtest.h>
#include <optional>
#include <utility>
#include <sys/wait.h>
#include <unistd.h>

using namespace llmctl;

namespace {

// A child that waits for a signal, and its identity.
std::pair<pid_t, std::optional<Identity>> paused_child() {
    pid_t pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    return {pid, pid > 0 ? identity_of(pid) : std::nullopt};
}

} // namespace

TEST(Process, ParseStatWithParensInComm) {
    std::string line = "123 (a (b) c) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 42 rest\n";
    auto st = parse_proc_stat(line);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->pid, 123);
    EXPECT_EQ(st->state, 'S');
    EXPECT_EQ(st->ppid, 1);
    EXPECT_EQ(st->pgrp, 123);
    EXPECT_EQ(st->start_ticks, 98765u);
    EXPECT_EQ(st->rss_pages, 42u);
    EXPECT_FALSE(parse_proc_stat("garbage"));
}

TEST(Process, SelfIsAlive) {
    auto me = self_identity();
    EXPECT_EQ(me.pid, getpid());
    EXPECT_FALSE(me.boot_id.empty());
    EXPECT_TRUE(is_alive(me));
}

TEST(Process, RecycledPidIsNotAlive) {
    auto me = self_identity();
    Identity wrong = me;
    wrong.start_ticks += 1; // what a recycled PID looks like: same pid, other start time
    EXPECT_FALSE(is_alive(wrong));
    Identity other_boot = me;
    other_boot.boot_id = "00000000-0000-0000-0000-000000000000";
    EXPECT_FALSE(is_alive(other_boot));
}

TEST(Process, ZombieIsNotAlive) {
    auto [pid, id] = paused_child();
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(id);
    EXPECT_TRUE(is_alive(*id));
    kill(pid, SIGKILL);
    // Until waitpid the child is a zombie: poll for the state change, then check.
    for (int i = 0; i < 2000; ++i) {
        auto st = read_proc_stat(pid);
        if (st && st->state == 'Z') break;
        usleep(1000);
    }
    EXPECT_EQ(read_proc_stat(pid)->state, 'Z');
    EXPECT_FALSE(is_alive(*id));
    EXPECT_FALSE(identity_of(pid));
    waitpid(pid, nullptr, 0);
    EXPECT_FALSE(is_alive(*id));
}

TEST(Process, ReadsAChildsEnvironmentCommandLineAndName) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char* argv[] = {const_cast<char*>("sleep"), const_cast<char*>("30"), nullptr};
        char* envp[] = {const_cast<char*>("LLMCTL_NAME=one"), const_cast<char*>("EMPTY="), nullptr};
        execve("/bin/sleep", argv, envp);
        _exit(127);
    }
    // Until the exec, the child's /proc files are the parent's; exec sets the new comm before the
    // new environment (an instant with comm "sleep" and no environ): poll for both.
    for (int i = 0; i < 2000 && (proc_comm(pid) != "sleep" || proc_environ(pid).empty()); ++i) usleep(1000);
    EXPECT_EQ(proc_comm(pid), "sleep");
    EXPECT_EQ(proc_environ(pid), (std::vector<std::string>{"LLMCTL_NAME=one", "EMPTY="}));
    EXPECT_EQ(proc_cmdline(pid), (std::vector<std::string>{"sleep", "30"}));
    EXPECT_TRUE(owned_by_me(pid));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    EXPECT_TRUE(proc_environ(pid).empty());
    EXPECT_TRUE(proc_cmdline(pid).empty());
    EXPECT_EQ(proc_comm(pid), "?");
    EXPECT_FALSE(owned_by_me(pid));
}

TEST(Process, ListsPidsAndStartTimes) {
    auto pids = list_pids();
    EXPECT_NE(std::find(pids.begin(), pids.end(), getpid()), pids.end());
    auto started = process_started_ms(self_identity().start_ticks);
    EXPECT_LE(started, now_ms());
    EXPECT_GT(started, now_ms() - 3'600'000); // this test started less than an hour ago
}

// is_alive_lately answers a look younger than max_age again (a process that died since is seen
// at the next look after it), and looks anew at once with no age allowed.
TEST(Process, AliveLatelyAnswersARecentLookAgain) {
    auto [pid, id] = paused_child();
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(id);
    EXPECT_TRUE(is_alive_lately(*id, std::chrono::hours(1)));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    EXPECT_TRUE(is_alive_lately(*id, std::chrono::hours(1)));  // the look an hour allows
    EXPECT_FALSE(is_alive_lately(*id, Millis(0)));             // a new look
    EXPECT_FALSE(is_alive_lately(*id, std::chrono::hours(1))); // and that one is kept
}
