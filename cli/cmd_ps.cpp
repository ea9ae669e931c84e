// llmctl ps: what runs, read from one snapshot of the state file. Takes no lock, writes nothing.

#include "commands.hpp"

#include "llmctl/holds.hpp"
#include "llmctl/json_text.hpp"
#include "llmctl/admission.hpp"
#include "llmctl/config.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/exits.hpp"
#include "llmctl/gateway_registry.hpp"
#include "llmctl/health.hpp"
#include "llmctl/lookup.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/recovery.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/slots.hpp"
#include "llmctl/units.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <unistd.h>

namespace llmctl::cli {

namespace {

struct ProbeResult {
    bool probed = false;
    int http = 0; // 0: no answer
    std::int64_t ms = 0;
};

// Probes the health endpoint of every live row at once, one thread each, 2 s at most.
std::vector<ProbeResult> probe_all(const std::vector<ServerRow>& rows, const Globals& g) {
    std::optional<Config> cfg; // for each model's health path; a broken config falls back to /health
    try {
        cfg = load_config(g.config_path);
    } catch (const Error&) {}
    std::vector<ProbeResult> out(rows.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        std::string status = effective_status(r);
        if (!r.port || status == "dead" || status == "failed") continue;
        const ModelConfig* m = cfg ? cfg->find(r.name) : nullptr;
        auto adhoc = m ? std::nullopt : model_from_spec(Defaults{}, r.name, r.spec_json);
        std::string path = m ? m->health : adhoc ? adhoc->health : "/health";
        threads.emplace_back([&out, i, host = r.host, port = static_cast<int>(*r.port), path] {
            auto t0 = std::chrono::steady_clock::now();
            Probe p = probe_ready(host, port, path, Millis(2000));
            out[i].http = p.ok && !p.http ? 200 : p.http; // health = "tcp": a connection counts as 200
            out[i].ms = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - t0).count();
            out[i].probed = true;
        });
    }
    for (auto& t : threads) t.join();
    return out;
}

// Columns padded to their widest cell, two spaces apart; the last one unpadded.
void print_table(const std::vector<std::vector<std::string>>& table) {
    std::vector<std::size_t> w(table[0].size(), 0);
    for (auto& row : table)
        for (std::size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
    for (auto& row : table) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) line += i + 1 < row.size() ? fmt::format("{:<{}}  ", row[i], w[i]) : row[i];
        std::cout << line << "\n";
    }
}

void print_gateways_table(const std::vector<GatewayRow>& gateways, std::int64_t now) {
    std::vector<std::vector<std::string>> table = {{"GATEWAY", "PID", "IN FLIGHT", "SERVED", "UPTIME"}};
    for (const auto& gw : gateways)
        table.push_back({gw.url, std::to_string(gw.owner.pid), std::to_string(gw.in_flight), std::to_string(gw.served),
                         format_age(gw.started_at, now)});
    print_table(table);
}

nlohmann::json gateways_json(const std::vector<GatewayRow>& gateways) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& gw : gateways)
        arr.push_back(
            {{"url", gw.url}, {"pid", gw.owner.pid}, {"in_flight", gw.in_flight}, {"served", gw.served}, {"started_at", gw.started_at}});
    return arr;
}

// `ps --pools`: each pool's budget, use, reservations and queue.
int print_pools(const std::vector<PoolReport>& pools, bool json) {
    if (json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& p : pools)
            arr.push_back(
                {{"name", p.name},
                 {"kind", p.kind.empty() ? nlohmann::json() : nlohmann::json(p.kind)},
                 {"budget_bytes", p.budget ? nlohmann::json(*p.budget) : nlohmann::json()},
                 {"used_bytes", p.used},
                 {"reserved_bytes", p.reserved},
                 {"free_bytes", p.budget ? nlohmann::json(*p.budget - std::min(*p.budget, p.used + p.reserved)) : nlohmann::json()},
                 {"queued", p.queued},
                 {"servers", p.servers}});
        std::cout << json_text(arr, 2) << "\n";
        return 0;
    }
    std::vector<std::vector<std::string>> table = {{"POOL", "KIND", "BUDGET", "USED", "RESERVED", "FREE", "QUEUED", "SERVERS"}};
    for (const auto& p : pools)
        table.push_back({p.name, p.kind.empty() ? "-" : p.kind, p.budget ? format_size(*p.budget) : "-", format_size(p.used),
                         format_size(p.reserved), p.budget ? format_size(*p.budget - std::min(*p.budget, p.used + p.reserved)) : "-",
                         std::to_string(p.queued), p.servers.empty() ? "-" : fmt::format("{}", fmt::join(p.servers, ","))});
    print_table(table);
    return 0;
}

nlohmann::json exit_json(const ExitRecord& e) {
    return {{"cause", e.cause},
            {"known", e.known},
            {"code", e.code ? nlohmann::json(*e.code) : nlohmann::json()},
            {"signal", e.signal ? nlohmann::json(signal_name(*e.signal)) : nlohmann::json()},
            {"core_dumped", e.core},
            {"oom_killed", e.oom},
            {"pid", e.pid},
            {"at", e.at},
            {"action", e.action.empty() ? nlohmann::json() : nlohmann::json(e.action)}};
}

// ps -a's REASON: why a server failed, what its dead server's monitor saw, or "-".
std::string reason(const ServerRow& r, const std::string& status, const std::map<std::string, ExitRecord>& exits) {
    auto e = exits.find(r.name);
    const bool this_one = e != exits.end() && e->second.instance == r.instance;
    if (status == "failed") return r.error.empty() ? "failed" : r.error.substr(0, r.error.find('\n'));
    if (status == "dead") return this_one ? e->second.cause + " (reap clears the row)" : "its process is gone (reap clears the row)";
    if (status == "restarting") return this_one ? e->second.cause + fmt::format("; restart {} pending", r.restarts + 1) : "restart pending";
    return "-";
}

// Below ps -a's table: the log lines a failed server's row keeps.
void print_failed_logs(const std::vector<ServerRow>& rows) {
    for (const auto& r : rows) {
        auto nl = r.error.find('\n');
        if (r.status != "failed" || nl == std::string::npos) continue;
        std::string rest = r.error.substr(nl + 1);
        std::cout << fmt::format("\n{}: last lines of its log (llmctl logs {}):\n", r.name, r.name);
        for (std::size_t at = 0; at < rest.size();) {
            auto end = rest.find('\n', at);
            std::cout << "  " << rest.substr(at, end == std::string::npos ? std::string::npos : end - at) << "\n";
            at = end == std::string::npos ? rest.size() : end + 1;
        }
    }
}

} // namespace

std::function<int()> setup_ps(CLI::App& app, Globals& g) {
    auto all = std::make_shared<bool>(false);
    auto json = std::make_shared<bool>(false);
    auto names = std::make_shared<bool>(false);
    auto health = std::make_shared<bool>(false);
    auto gateways_only = std::make_shared<bool>(false);
    auto pools_only = std::make_shared<bool>(false);
    app.add_flag("-a,--all", *all,
                 "Include failed servers and the last exit of names with no server now, with a REASON column (the last exit's "
                 "cause)");
    auto* json_flag = app.add_flag("--json", *json, "Print a JSON array (always valid JSON, [] when empty)");
    auto* names_flag = app.add_flag("-q,--quiet", *names, "Print names only, one per line");
    app.add_flag("--health", *health, "Probe every live server's health endpoint (in parallel, 2s each): HEALTH column")
        ->excludes(names_flag);
    json_flag->excludes(names_flag);
    app.add_flag("--gateways", *gateways_only, "List the running gateways (llmctl serve) instead of the servers")
        ->excludes(names_flag)
        ->excludes("--health")
        ->excludes("--all");
    app.add_flag("--pools", *pools_only,
                 "List the memory pools instead of the servers: budget, used (live servers), reserved (starts evicting), "
                 "free, starts queued for memory")
        ->excludes(names_flag)
        ->excludes("--health")
        ->excludes("--all")
        ->excludes("--gateways");
    app.footer("Examples:\n  llmctl ps\n  llmctl ps --json | jq -r '.[].url'\n  llmctl ps -q\n  llmctl ps --health\n"
               "  llmctl ps --gateways\n  llmctl ps --pools\n");
    return [all, json, names, health, gateways_only, pools_only, &g]() -> int {
        std::string dir = resolve_state_dir(g.state_dir);
        std::vector<ServerRow> rows;
        std::map<std::string, LeaseCounts> use; // leases with a live owner
        std::vector<GatewayRow> gateways;       // live ones
        std::vector<PoolReport> pools;
        std::map<std::string, ExitRecord> exits; // the last exit of each name
        std::vector<Hold> holds;                 // names `stop` holds down
        std::optional<Config> cfg;
        if (*pools_only || !*names) {
            try {
                cfg = load_config(g.config_path);
            } catch (const Error&) {
                if (*pools_only) throw; // the budgets are the config's
            }
        }
        if (check_state_dir(dir)) {
            if (auto store = Store::open_read(state_db_path(dir))) {
                Transaction tx(*store, Transaction::Kind::deferred); // one snapshot
                rows = load_servers(*store);
                use = live_leases_by_model(*store);
                gateways = live_gateways(*store);
                if (*json || *all) exits = last_exits(*store); // (the table without -a shows none)
                holds = load_holds(*store);
                if (*pools_only) pools = pool_reports(&*store, cfg ? &*cfg : nullptr);
            }
        }
        if (*pools_only) {
            if (pools.empty()) pools = pool_reports(nullptr, cfg ? &*cfg : nullptr); // no state file yet
            return print_pools(pools, *json);
        }
        std::int64_t now = now_ms();
        if (*gateways_only) {
            if (*json)
                std::cout << json_text(gateways_json(gateways), 2) << "\n";
            else
                print_gateways_table(gateways, now);
            return 0;
        }
        // max_concurrent comes from the row (the cap its server started with), else from the
        // config; a server neither names shows "-". MEM when pools exist (the config's or a row's).
        const bool mem_column =
            (cfg && !cfg->pools.empty()) || std::any_of(rows.begin(), rows.end(), [](const ServerRow& r) { return !r.pool.empty(); });
        // Live servers of this state dir the state file does not know (a lost or replaced file).
        // Only when the file has no rows: that is what a deleted or replaced file looks like (any
        // start, stop or reap since would have rebuilt the rows), and scanning /proc costs time in
        // proportion to every process on the machine, which ps must not pay on each prompt.
        // The rows are read again after the process scan, so a start that spawned during the scan
        // has committed its row by then (spawn → commit is well under a millisecond, in the lock).
        if (rows.empty() && check_state_dir(dir) && g.verbosity >= 0) {
            auto marked = marked_servers(scan_marked(dir, true));
            if (!marked.empty()) {
                std::vector<ServerRow> now_rows;
                if (auto store = Store::open_read(state_db_path(dir))) now_rows = load_servers(*store);
                std::vector<std::string> strays;
                for (auto& m : marked)
                    if (std::none_of(now_rows.begin(), now_rows.end(), [&](const ServerRow& r) { return r.instance == m.instance; }))
                        strays.push_back(fmt::format("{} (pid {}, port {})", m.name, m.id.pid, m.port));
                if (!strays.empty())
                    std::cerr << fmt::format("llmctl: warning: {} server(s) of this state dir run without a row: {}\n"
                                             "hint: the next start/stop/reap rebuilds lost rows; reap stops orphans\n",
                                             strays.size(), fmt::join(strays, ", "));
            }
        }
        std::vector<ProbeResult> probes(rows.size());
        if (*health && !*names) probes = probe_all(rows, g);
        long page = ::sysconf(_SC_PAGESIZE);
        nlohmann::json arr = nlohmann::json::array();
        std::vector<std::vector<std::string>> table = {{"NAME", "STATUS", "PID", "PORT", "UPTIME", "IDLE", "RSS", "SLOTS", "URL"}};
        if (mem_column) table[0].insert(table[0].begin() + 7, "MEM");
        if (*health) table[0].insert(table[0].end() - 1, "HEALTH");
        if (*all) table[0].push_back("REASON"); // why a server failed or is dead
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const auto& r = rows[i];
            std::string status = effective_status(r);
            if (status == "failed" && !*all) continue;
            if (*names) {
                std::cout << r.name << "\n";
                continue;
            }
            const LeaseCounts u = use.count(r.name) ? use[r.name] : LeaseCounts{};
            const ModelConfig* mc = cfg ? cfg->find(r.name) : nullptr;
            const int max = mc ? std::max(1, mc->max_concurrent) : 0; // 0: not in the config
            const int cap = slot_cap(r, max);                         // the one recorded on a live server's row
            std::string slots =
                fmt::format("{}/{}", u.active, cap ? std::to_string(cap) : "-") + (u.queued ? fmt::format(" +{} queued", u.queued) : "");
            std::string shown = status == "stopping" && u.active ? fmt::format("stopping ({} in flight)", u.active) : status;
            std::uint64_t rss = 0;
            if (status != "dead" && status != "failed")
                if (auto st = read_proc_stat(r.server.pid)) rss = st->rss_pages * static_cast<std::uint64_t>(page);
            arr.push_back({{"name", r.name},
                           {"status", status},
                           {"pid", r.server.pid},
                           {"port", r.port ? nlohmann::json(*r.port) : nlohmann::json()},
                           {"url", r.url()},
                           {"started_at", r.started_at ? nlohmann::json(*r.started_at) : nlohmann::json()},
                           {"ready_at", r.ready_at ? nlohmann::json(*r.ready_at) : nlohmann::json()},
                           {"last_used", r.last_used ? nlohmann::json(*r.last_used) : nlohmann::json()},
                           {"rss_bytes", rss},
                           {"log_path", r.log_path},
                           {"error", r.error},
                           {"active", u.active},
                           {"queued", u.queued},
                           {"max_concurrent", max ? nlohmann::json(max) : nlohmann::json()},
                           {"recorded_max_concurrent", r.max_concurrent ? nlohmann::json(*r.max_concurrent) : nlohmann::json()},
                           {"pool", r.pool.empty() ? nlohmann::json() : nlohmann::json(r.pool)},
                           {"memory_bytes", r.memory ? nlohmann::json(*r.memory) : nlohmann::json()},
                           {"memory_source", r.memory_source.empty() ? nlohmann::json() : nlohmann::json(r.memory_source)},
                           {"monitor_pid", r.monitor.pid ? nlohmann::json(r.monitor.pid) : nlohmann::json()},
                           {"restarts", r.restarts},
                           {"last_exit", exits.count(r.name) ? exit_json(exits[r.name]) : nlohmann::json()}});
            // no clock ticks for a process that is not there
            bool gone = status == "dead" || status == "failed" || status == "restarting";
            table.push_back({r.name, shown, r.server.pid ? std::to_string(r.server.pid) : "-", r.port ? std::to_string(*r.port) : "-",
                             gone ? "-" : format_age(r.ready_at ? r.ready_at : r.started_at, now),
                             gone ? "-" : format_age(r.last_used, now), rss ? format_size(rss) : "-", slots,
                             r.url().empty() ? "-" : r.url()});
            if (mem_column)
                table.back().insert(table.back().begin() + 7,
                                    r.memory ? fmt::format("{} {}", format_size(static_cast<std::uint64_t>(*r.memory)), r.memory_source)
                                             : "-");
            if (*all) table.back().push_back(reason(r, status, exits));
            if (*health) {
                const auto& p = probes[i];
                arr.back()["health_http"] = p.probed ? nlohmann::json(p.http) : nlohmann::json();
                arr.back()["health_ms"] = p.probed ? nlohmann::json(p.ms) : nlohmann::json();
                std::string cell = !p.probed ? "-" : p.http == 200 ? "ok" : p.http == 0 ? "down" : fmt::format("http {}", p.http);
                table.back().insert(table.back().end() - 1, cell);
            }
        }
        if (*names) return 0;
        auto has_row = [&](const std::string& name) {
            return std::any_of(rows.begin(), rows.end(), [&](const ServerRow& r) { return r.name == name; });
        };
        // A name with no row (held, or exited): its line has only a status, a pid and a reason.
        auto add_rowless = [&](nlohmann::json j, const std::string& shown, const std::string& pid, const std::string& why) {
            arr.push_back(std::move(j));
            table.push_back({arr.back()["name"].get<std::string>(), shown, pid, "-", "-", "-", "-", "-", "-"});
            if (*all) table.back().push_back(why);
            if (mem_column) table.back().insert(table.back().begin() + 7, "-");
            if (*health) table.back().insert(table.back().end() - 1, "-");
        };
        for (const auto& h : holds) { // held down by a stop: shown until a start or apply lets it go
            if (has_row(h.name)) continue;
            nlohmann::json j{{"name", h.name}, {"status", "stopped"}, {"held", true}, {"held_at", h.at}};
            if (exits.count(h.name)) j["last_exit"] = exit_json(exits[h.name]);
            add_rowless(std::move(j), "stopped (held)", "-",
                        fmt::format("held down by stop {} ago: llmctl start {} lets it go", format_age(h.at, now), h.name));
        }
        auto held = [&](const std::string& name) {
            return std::any_of(holds.begin(), holds.end(), [&](const Hold& h) { return h.name == name; });
        };
        if (*all) // names that have no row now: their last exit
            for (const auto& entry : exits) {
                const auto& [name, e] = entry;
                if (has_row(entry.first) || held(entry.first)) continue;
                add_rowless({{"name", name}, {"status", "exited"}, {"pid", e.pid}, {"last_exit", exit_json(e)}}, "exited",
                            std::to_string(e.pid), fmt::format("{} ago: {}", format_age(e.at, now), e.cause));
            }
        if (*json) {
            std::cout << json_text(arr, 2) << "\n";
            return 0;
        }
        print_table(table);
        if (*all) print_failed_logs(rows);
        if (!gateways.empty()) {
            std::cout << "\n";
            print_gateways_table(gateways, now);
        }
        return 0;
    };
}

} // namespace llmctl::cli
