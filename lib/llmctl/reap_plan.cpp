#include "llmctl/reap_plan.hpp"

#include <algorithm>
#include <set>

namespace llmctl {

namespace {

// A row is dead when its server is gone and it is running, or nobody is still starting or
// stopping it (a start whose server died is the start's own to report).
// A dead server whose monitor lives is left to the monitor: it records the exit and may restart it.
bool is_dead(const ReapRow& r) { return !r.server_alive && !r.monitor_alive && (r.row.status == "running" || !r.owner_alive); }

bool is_duty_stop(const ReapSnapshot& s, const ServerRow& row) {
    return std::any_of(s.duty_stops.begin(), s.duty_stops.end(), [&](const ServerRow& d) { return d.instance == row.instance; });
}

bool is_idle(const ReapSnapshot& s, const ReapRow& r) {
    return r.idle_limit.count() > 0 && r.row.last_used && s.now - *r.row.last_used > r.idle_limit.count() && !r.in_use;
}

// Marked processes that are a live row's server: that row's instance lives (under the markers'
// instance when the row disagrees with them, which is repaired).
void match_marked(const ReapSnapshot& s, std::set<std::string>& live, ReapPlan& plan) {
    for (const auto& m : s.marked) {
        for (const auto& r : s.rows) {
            if (r.row.status == "failed" || r.row.server != m.id) continue;
            live.insert(m.instance);
            if (r.row.instance != m.instance || r.row.host != m.host || r.row.port != m.port) plan.repairs.push_back({r.row, m});
        }
    }
    for (const auto& m : s.marked)
        if (!live.count(m.instance)) plan.orphans.push_back(m);
}

// Live rows whose llmctl died halfway, and running ones idle past their limit.
void plan_live_rows(const ReapSnapshot& s, const std::set<std::string>& live, ReapPlan& plan) {
    for (const auto& r : s.rows) {
        if (!live.count(r.row.instance) || !r.server_alive || is_duty_stop(s, r.row)) continue;
        if (r.row.status == "starting" && !r.owner_alive)
            plan.adopt.push_back(r.row);
        else if (r.row.status == "stopping" && !r.owner_alive)
            plan.finish_stop.push_back(r.row);
        else if (r.row.status == "running" && is_idle(s, r))
            plan.idle.push_back(r.row);
    }
}

} // namespace

ReapPlan decide(const ReapSnapshot& s) {
    ReapPlan plan;
    std::set<std::string> live;
    for (const auto& r : s.rows) {
        if (r.row.status == "failed") continue;
        if (is_dead(r))
            plan.dead.push_back(r.row);
        else
            live.insert(r.row.instance);
    }
    for (const auto& l : s.leases)
        if (!l.owner_alive) plan.dead_leases.push_back(l);
    match_marked(s, live, plan);
    plan_live_rows(s, live, plan);
    plan.duty_stops = s.duty_stops;
    return plan;
}

} // namespace llmctl
