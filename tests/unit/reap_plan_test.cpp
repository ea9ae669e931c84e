// reap's decisions over made-up snapshots: no processes, no state file.
#include "llmctl/reap_plan.hpp"

#include <gtest/gtest.h>

using namespace llmctl;

namespace {

constexpr std::int64_t k_now = 1'000'000'000;

ReapRow row(const std::string& name, const std::string& status, bool server_alive, bool owner_alive = false) {
    ReapRow r;
    r.row.name = name;
    r.row.instance = "i-" + name;
    r.row.status = status;
    r.row.host = "127.0.0.1";
    r.row.port = 10500;
    static pid_t next_pid = 1000;
    r.row.server = Identity{++next_pid, 7, "boot"};
    r.server_alive = server_alive;
    r.owner_alive = owner_alive;
    return r;
}

MarkedProcess marks_of(const ReapRow& r) {
    return {r.row.server, r.row.server.pid, r.row.instance, r.row.name, r.row.host, static_cast<int>(*r.row.port)};
}

std::vector<std::string> names(const std::vector<ServerRow>& rows) {
    std::vector<std::string> out;
    for (auto& r : rows) out.push_back(r.name);
    return out;
}

using Names = std::vector<std::string>;

} // namespace

TEST(ReapPlan, DeadRows) {
    ReapSnapshot s;
    s.now = k_now;
    s.rows = {row("run", "running", false),           row("run-owned", "running", false, true),
              row("start-orphan", "starting", false), row("start-owned", "starting", false, true),
              row("stop-orphan", "stopping", false),  row("failed", "failed", false),
              row("alive", "running", true)};
    auto p = decide(s);
    // A running row whose server is gone is dead even with a live owner; a start or stop with a
    // live owner is its owner's to finish; a failed row is kept for ps.
    EXPECT_EQ(names(p.dead), (Names{"run", "run-owned", "start-orphan", "stop-orphan"}));
}

TEST(ReapPlan, HalfDoneStartsAndStops) {
    ReapSnapshot s;
    s.now = k_now;
    s.rows = {row("adopt", "starting", true), row("owned", "starting", true, true), row("finish", "stopping", true),
              row("stopping-owned", "stopping", true, true)};
    auto p = decide(s);
    EXPECT_EQ(names(p.adopt), (Names{"adopt"}));
    EXPECT_EQ(names(p.finish_stop), (Names{"finish"}));
    EXPECT_TRUE(p.dead.empty());
}

TEST(ReapPlan, IdleOnlyPastTheLimitAndUnused) {
    ReapSnapshot s;
    s.now = k_now;
    auto idle = row("idle", "running", true);
    idle.idle_limit = Millis(60'000);
    idle.row.last_used = k_now - 60'001;
    auto fresh = idle;
    fresh.row.name = "fresh";
    fresh.row.instance = "i-fresh";
    fresh.row.last_used = k_now - 60'000; // exactly at the limit: not yet
    auto busy = idle;
    busy.row.name = "busy";
    busy.row.instance = "i-busy";
    busy.in_use = true;
    auto never = idle;
    never.row.name = "never";
    never.row.instance = "i-never";
    never.idle_limit = Millis(0);
    auto unused = idle;
    unused.row.name = "unused";
    unused.row.instance = "i-unused";
    unused.row.last_used.reset();
    s.rows = {idle, fresh, busy, never, unused};
    EXPECT_EQ(names(decide(s).idle), (Names{"idle"}));
}

TEST(ReapPlan, ADutyStopIsNotAlsoAdoptedOrIdle) {
    ReapSnapshot s;
    s.now = k_now;
    auto r = row("exec", "starting", true);
    s.rows = {r};
    s.duty_stops = {r.row};
    auto p = decide(s);
    EXPECT_TRUE(p.adopt.empty());
    EXPECT_EQ(names(p.duty_stops), (Names{"exec"}));
}

TEST(ReapPlan, LeasesOfDeadClients) {
    ReapSnapshot s;
    s.now = k_now;
    s.leases = {{1, "m", 10, true}, {2, "m", 11, false}, {3, "n", 12, false}};
    auto p = decide(s);
    ASSERT_EQ(p.dead_leases.size(), 2u);
    EXPECT_EQ(p.dead_leases[0].id, 2);
    EXPECT_EQ(p.dead_leases[1].id, 3);
}

TEST(ReapPlan, OrphansAreMarkedProcessesNoLiveRowAccountsFor) {
    ReapSnapshot s;
    s.now = k_now;
    auto live = row("live", "running", true);
    auto dead = row("dead", "running", false);
    auto failed = row("failed", "failed", true);
    s.rows = {live, dead, failed};
    MarkedProcess child = marks_of(live); // a child of the live server: same instance, another pid
    child.id.pid = 5000;
    MarkedProcess stray{Identity{6000, 1, "boot"}, 6000, "i-gone", "gone", "127.0.0.1", 10501};
    MarkedProcess escaped = marks_of(dead); // a child of the dead server, still running
    escaped.id.pid = 7000;
    s.marked = {marks_of(live), child, escaped, marks_of(failed), stray};
    auto p = decide(s);
    Names orphans;
    for (auto& o : p.orphans) orphans.push_back(o.name);
    // The live server and its child are accounted for; a dead row's instance and a failed row
    // account for nothing.
    EXPECT_EQ(orphans, (Names{"dead", "failed", "gone"}));
    EXPECT_TRUE(p.repairs.empty());
}

TEST(ReapPlan, ARowThatDisagreesWithItsServersMarkersIsRepairedNotOrphaned) {
    ReapSnapshot s;
    s.now = k_now;
    auto r = row("m", "running", true);
    MarkedProcess truth = marks_of(r);
    r.row.host = "203.0.113.9"; // a flipped byte
    s.rows = {r};
    s.marked = {truth};
    auto p = decide(s);
    ASSERT_EQ(p.repairs.size(), 1u);
    EXPECT_EQ(p.repairs[0].marks.host, "127.0.0.1");
    EXPECT_TRUE(p.orphans.empty());
    EXPECT_TRUE(p.dead.empty());
}
