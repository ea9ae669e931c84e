#include "llmctl/errors.hpp"
#include "llmctl/files.hpp"
#include "llmctl/process.hpp"
#include "llmctl/spawn.hpp"
#include "llmctl/strings.hpp"

#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <set>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace llmctl;

namespace {

std::set<std::string> open_fds(pid_t pid) {
    std::set<std::string> out;
    DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (!d) return out;
    while (auto* e = readdir(d))
        if (e->d_name[0] != '.') out.insert(e->d_name);
    closedir(d);
    return out;
}

bool poll_until(const std::function<bool()>& cond) {
    for (int i = 0; i < 5000; ++i) {
        if (cond()) return true;
        usleep(1000);
    }
    return false;
}

} // namespace

TEST(Spawn, LogsAppendSessionAndNoInheritedFds) {
    char tmpl[] = "/tmp/llmctl-spawn-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    std::string log = dir + "/x.log";
    std::ofstream(log) << "earlier line\n";
    int leaky = open("/dev/null", O_RDONLY); // no O_CLOEXEC on purpose
    ASSERT_GE(leaky, 0);

    SpawnRequest req;
    req.argv = {"sh", "-c", "echo out; echo err >&2; echo \"env=$LLMCTL_TEST\"; echo ready; exec sleep 30"};
    req.env = {{"LLMCTL_TEST", "marker-42"}};
    req.log_path = log;
    Identity id = spawn_server(req);
    close(leaky);
    ASSERT_TRUE(is_alive(id));
    ASSERT_TRUE(poll_until([&] { return read_file(log).value_or("").find("ready") != std::string::npos; }));
    std::string text = *read_file(log);
    EXPECT_EQ(text.rfind("earlier line\n", 0), 0u) << "the log was truncated, not appended";
    EXPECT_NE(text.find("out\n"), std::string::npos);
    EXPECT_NE(text.find("err\n"), std::string::npos);
    EXPECT_NE(text.find("env=marker-42"), std::string::npos);

    auto st = read_proc_stat(id.pid);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->session, id.pid); // setsid: its own session and group
    EXPECT_EQ(st->pgrp, id.pid);
    // `exec sleep` keeps the pid; only stdin, stdout and stderr are open.
    ASSERT_TRUE(poll_until([&] { return read_file("/proc/" + std::to_string(id.pid) + "/comm").value_or("") == "sleep\n"; }));
    // Right after exec the dynamic loader of `sleep` briefly holds a library fd, and before it
    // opens it the set is already {0,1,2}: wait until `sleep` sleeps (state S, past the loader)
    // with only stdio open, twice 20 ms apart. A leaked fd would stay open for good.
    const std::set<std::string> std_only{"0", "1", "2"};
    auto settled = [&] {
        auto s1 = read_proc_stat(id.pid);
        return s1 && s1->state == 'S' && open_fds(id.pid) == std_only;
    };
    poll_until([&] {
        if (!settled()) return false;
        usleep(20'000);
        return settled();
    });
    auto fds = open_fds(id.pid);
    std::string targets; // what an extra fd points at, for the failure message
    for (auto& fd : fds) {
        char t[256] = {};
        if (readlink(("/proc/" + std::to_string(id.pid) + "/fd/" + fd).c_str(), t, sizeof t - 1) > 0) targets += fd + "->" + t + " ";
    }
    EXPECT_EQ(fds, std_only) << "open fds: " << targets;
    char target[256] = {};
    ASSERT_GT(readlink(("/proc/" + std::to_string(id.pid) + "/fd/0").c_str(), target, sizeof target - 1), 0);
    EXPECT_STREQ(target, "/dev/null");

    kill(id.pid, SIGKILL);
    waitpid(id.pid, nullptr, 0);
    std::system(("rm -rf '" + dir + "'").c_str());
}

// With a monitor: the server's parent is the monitor, each in a session of its own; a gate that
// closes unopened (a start that died before its commit) ends both without running the command
// or the monitor program, and neither is left a zombie of ours.
TEST(Spawn, MonitoredServerBehindItsGate) {
    char tmpl[] = "/tmp/llmctl-spawn-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    SpawnRequest req;
    req.argv = {"sh", "-c", "echo ran >> \"$0.ran\"; exec sleep 30", dir + "/x"};
    req.log_path = dir + "/x.log";
    // A monitor program that would say so if it ran: the gate must never let it.
    std::ofstream(dir + "/monitor") << "#!/bin/sh\necho monitor-ran >> " << dir << "/x.ran\n";
    ::chmod((dir + "/monitor").c_str(), 0755);
    req.monitor = MonitorSpec{dir + "/monitor", "/bin/false", dir, "x", "i-1", "", ""};
    {
        GatedSpawn g = spawn_gated(req);
        ASSERT_GT(g.monitor.pid, 0);
        ASSERT_TRUE(is_alive(g.id));
        ASSERT_TRUE(is_alive(g.monitor));
        // (each calls setsid() as soon as it runs, not necessarily before we look)
        EXPECT_TRUE(poll_until([&] {
            auto st = read_proc_stat(g.id.pid);
            return st && st->session == g.id.pid;
        }));
        auto server = read_proc_stat(g.id.pid);
        auto monitor = read_proc_stat(g.monitor.pid);
        ASSERT_TRUE(server && monitor);
        EXPECT_EQ(server->ppid, g.monitor.pid) << "the monitor is the server's parent";
        EXPECT_EQ(monitor->session, g.monitor.pid);
        EXPECT_NE(monitor->ppid, ::getpid()) << "the monitor is not our child";
        // The gate closes here, unopened.
        Identity s = g.id, m = g.monitor;
        g.gate.reset();
        EXPECT_TRUE(poll_until([&] { return !is_alive(s) && !is_alive(m); }));
    }
    EXPECT_FALSE(read_file(dir + "/x.ran")) << "something ran: " << read_file(dir + "/x.ran").value_or("");
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child of ours is left to reap";
    std::system(("rm -rf '" + dir + "'").c_str());
}

TEST(Spawn, MissingProgramIsServerError) {
    SpawnRequest req;
    req.argv = {"llmctl-no-such-program-xyz"};
    req.log_path = "/tmp/llmctl-spawn-missing.log";
    try {
        spawn_server(req);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::server);
        EXPECT_NE(std::string(e.what()).find("not found in PATH"), std::string::npos);
    }
    std::remove(req.log_path.c_str());
}

TEST(RunAndRead, ReturnsWhatAToolPrintsOrNothing) {
    EXPECT_EQ(run_and_read({"sh", "-c", "echo 24576; echo x >&2"}, Millis(5000)), std::optional<std::string>("24576\n"));
    EXPECT_EQ(run_and_read({"sh", "-c", "echo partial; exit 3"}, Millis(5000)), std::nullopt); // a failure
    EXPECT_EQ(run_and_read({"llmctl-no-such-tool"}, Millis(5000)), std::nullopt);
    auto t = std::chrono::steady_clock::now();
    EXPECT_EQ(run_and_read({"sleep", "10"}, Millis(200)), std::nullopt); // a hung tool is killed
    EXPECT_LT(std::chrono::steady_clock::now() - t, std::chrono::seconds(5));
    EXPECT_EQ(run_and_read({"sh", "-c", "head -c 5000 /dev/zero"}, Millis(5000), 1000), std::nullopt); // too much
}
