#include "llmctl/recovery.hpp"

#include "llmctl/address.hpp"
#include "llmctl/config.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/health.hpp"
#include "llmctl/lock.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/signal.hpp"
#include "llmctl/strings.hpp"
#include "llmctl/json_text.hpp"

#include <algorithm>
#include <csignal>
#include <fmt/format.h>
#include <map>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

namespace llmctl {

namespace {

// The LLMCTL_ entries of /proc/PID/environ (of a key given twice, the last).
std::map<std::string, std::string> llmctl_env(pid_t pid) {
    std::map<std::string, std::string> out;
    for (const auto& entry : proc_environ(pid)) {
        auto eq = entry.find('=');
        if (entry.starts_with("LLMCTL_") && eq != std::string::npos) out[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    return out;
}

bool file_lost(const std::string& db) {
    struct stat sb {};
    return ::stat(db.c_str(), &sb) != 0 || sb.st_size == 0;
}

} // namespace

namespace {

// The markers of `pid` (stat already read) if it is this user's and carries an instance marker;
// `home` receives its LLMCTL_HOME.
std::optional<MarkedProcess> read_markers(pid_t pid, const ProcStat& st, std::string& home) {
    if (!owned_by_me(pid)) return std::nullopt;
    auto env = llmctl_env(pid);
    if (env["LLMCTL_INSTANCE"].empty()) return std::nullopt;
    home = env["LLMCTL_HOME"];
    MarkedProcess m;
    m.id = Identity{pid, st.start_ticks, boot_id()};
    m.session = st.session;
    m.instance = env["LLMCTL_INSTANCE"];
    m.name = env["LLMCTL_NAME"];
    m.host = env["LLMCTL_HOST"].empty() ? "127.0.0.1" : env["LLMCTL_HOST"];
    m.port = std::atoi(env["LLMCTL_PORT"].c_str());
    return m;
}

} // namespace

std::vector<MarkedProcess> scan_marked(const std::string& state_dir, bool leaders_only) {
    std::vector<MarkedProcess> out;
    for (pid_t pid : list_pids()) {
        auto st = read_proc_stat(pid);
        if (!st || st->state == 'Z' || st->state == 'X') continue;
        if (leaders_only && st->session != pid) continue;
        std::string home;
        auto m = read_markers(pid, *st, home);
        if (m && home == state_dir) out.push_back(std::move(*m)); // the canonical spelling only
    }
    return out;
}

std::optional<MarkedProcess> markers_of(const Identity& id) {
    auto st = read_proc_stat(id.pid);
    if (!st || st->state == 'Z' || st->state == 'X' || st->start_ticks != id.start_ticks || id.boot_id != boot_id()) return std::nullopt;
    std::string home;
    return read_markers(id.pid, *st, home);
}

bool row_matches_markers(const std::string& state_dir, const ServerRow& row) {
    auto st = read_proc_stat(row.server.pid);
    if (!st || st->start_ticks != row.server.start_ticks) return false;
    std::string home;
    auto m = read_markers(row.server.pid, *st, home);
    (void)state_dir; // the instance marker (64 random bits) already ties the process to the row
    if (!row.port) return false;
    if (m) return m->instance == row.instance && m->host == row.host && m->port == *row.port;
    // No markers: a server that replaced its environment (exec env -i …). Then the row's address
    // must be one of this machine's and the server itself must listen there.
    return is_local_address(row.host) && port_listeners(row.host, static_cast<int>(*row.port), {row.server.pid}).ours;
}

void require_row_matches_markers(const std::string& state_dir, const ServerRow& row) {
    if (row_matches_markers(state_dir, row)) return;
    // A server that exited since its row was read (stopped, killed) is gone, not damage (found
    // by the soak: a chat racing a stop called a sound row damaged).
    if (!is_alive(row.server))
        throw Error(Exit::server, fmt::format("{}'s server (pid {}) exited before it could be used", row.name, row.server.pid),
                    "llmctl ps -a says why; run the command again to start it");
    throw Error(Exit::failure,
                fmt::format("the state file's row of {} (pid {}, {}:{}) does not match that server's markers: the row is damaged", row.name,
                            row.server.pid, row.host, row.port.value_or(0)),
                "llmctl reap repairs it from the server's markers");
}

std::vector<MarkedProcess> marked_servers(const std::vector<MarkedProcess>& marked) {
    std::map<std::string, MarkedProcess> oldest;
    for (const auto& m : marked) {
        auto it = oldest.find(m.instance);
        if (it == oldest.end() || m.id.start_ticks < it->second.id.start_ticks ||
            (m.id.start_ticks == it->second.id.start_ticks && m.id.pid < it->second.id.pid))
            oldest[m.instance] = m;
    }
    std::vector<MarkedProcess> out;
    for (auto& [_, m] : oldest) out.push_back(m);
    return out;
}

RebuildCandidates probe_marked_servers(const std::string& state_dir) {
    RebuildCandidates out;
    for (auto& m : marked_servers(scan_marked(state_dir)))
        if (!m.name.empty() && valid_model_name(m.name)) out[m.name].push_back({m, false});
    for (auto& [_, servers] : out) {
        std::sort(servers.begin(), servers.end(), [](auto& a, auto& b) { return a.server.id.start_ticks < b.server.id.start_ticks; });
        for (auto& c : servers) c.healthy = c.server.port && probe_health(c.server.host, c.server.port, "/health", Millis(500)) == 200;
    }
    return out;
}

namespace {

// The candidates of one name the store does not know and that still run, oldest first.
std::vector<RebuildCandidate> unknown_and_alive(const std::vector<RebuildCandidate>& servers, const std::vector<ServerRow>& rows) {
    std::vector<RebuildCandidate> out;
    for (const auto& c : servers) {
        bool known = std::any_of(rows.begin(), rows.end(),
                                 [&](const ServerRow& r) { return r.instance == c.server.instance || r.name == c.server.name; });
        if (!known && is_alive(c.server.id)) out.push_back(c);
    }
    return out;
}

void insert_rebuilt_row(Store& store, const std::string& state_dir, const std::string& name, const RebuildCandidate& c) {
    const auto& s = c.server;
    ServerRow row;
    row.name = name;
    row.instance = s.instance;
    row.status = c.healthy ? "running" : "starting";
    row.server = s.id;
    row.port = s.port;
    row.host = s.host;
    row.argv_json = json_text(proc_cmdline(s.id.pid));
    row.log_path = log_path(state_dir, name);
    row.owner_pid = row.owner_start_ticks = 0; // nobody's start: the next start or reap finishes it
    row.started_at = process_started_ms(s.id.start_ticks);
    if (c.healthy) row.ready_at = row.started_at;
    row.last_used = now_ms();
    insert_server(store, row);
    store.add_event(name, "rebuilt", fmt::format("pid {} port {} from its markers", s.id.pid, s.port));
}

} // namespace

std::vector<std::string> rebuild_rows(Store& store, const std::string& state_dir, const RebuildCandidates& candidates) {
    std::vector<std::string> rebuilt;
    auto rows = load_servers(store);
    for (const auto& [name, probed] : candidates) {
        auto servers = unknown_and_alive(probed, rows);
        if (servers.empty()) continue;
        // Keep the oldest healthy one (oldest of all when none answered).
        auto keep = std::find_if(servers.begin(), servers.end(), [](const RebuildCandidate& c) { return c.healthy; });
        if (keep == servers.end()) keep = servers.begin();
        insert_rebuilt_row(store, state_dir, name, *keep);
        rebuilt.push_back(name);
        for (auto it = servers.begin(); it != servers.end(); ++it) {
            if (it == keep) continue;
            signal_identity(it->server.id, SIGTERM);
            store.add_event(name, "duplicate_stopped",
                            fmt::format("pid {} port {} (kept pid {})", it->server.id.pid, it->server.port, keep->server.id.pid));
        }
    }
    return rebuilt;
}

std::vector<std::string> recover_lost_state(const std::string& state_dir) {
    std::string db = state_db_path(state_dir);
    if (!file_lost(db)) return {};
    if (scan_marked(state_dir, true).empty()) return {};
    // Probing health takes up to 500 ms a server: done before the lock, decided under it. The
    // file may exist by then (another invocation rebuilt it, or `state init` created it empty):
    // rebuild_rows adds only the servers it still lacks, so none is left without a row.
    auto candidates = probe_marked_servers(state_dir);
    auto locked = open_locked(state_dir, LockOrder::lock_first);
    Transaction tx(locked.store);
    auto names = rebuild_rows(locked.store, state_dir, candidates);
    tx.commit();
    return names;
}

std::string rebuild_state(const std::string& state_dir, std::vector<std::string>* rebuilt) {
    ensure_state_dir(state_dir);
    auto candidates = probe_marked_servers(state_dir); // before the lock, as above
    auto lock = lock_state(state_dir);                 // lock first: the file may be moved aside and made anew
    std::string db = state_db_path(state_dir), moved;
    try {
        Store store = Store::open_write(db);
        Stmt check = store.prepare("PRAGMA quick_check");
        if (!check.step() || check.str(0) != "ok") throw Error(Exit::failure, "integrity check failed");
        if (!store.schema_intact()) throw Error(Exit::failure, "the schema is damaged"); // (found by the corruption sweep)
        (void)load_servers(store); // rows llmctl could not have written count as damage too
    } catch (const Error&) {
        moved = fmt::format("{}.corrupt-{}", db, now_ms());
        for (const char* suffix : {"", "-wal", "-shm"}) {
            std::string from = db + suffix, to = moved + suffix;
            if (::access(from.c_str(), F_OK) == 0 && ::rename(from.c_str(), to.c_str()) != 0) throw_sys("rename", from, errno);
        }
    }
    Store store = Store::open_write(db);
    Transaction tx(store);
    auto names = rebuild_rows(store, state_dir, candidates);
    if (!moved.empty()) store.add_event("", "state_moved_aside", moved);
    tx.commit();
    if (rebuilt) *rebuilt = names;
    return moved;
}

} // namespace llmctl
