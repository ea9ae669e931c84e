#include "llmctl/servers.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/names.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace llmctl {

namespace {

// The columns of a `servers` row, in the order `rows` reads them and `insert_server` writes them.
constexpr const char* k_column_list =
    "name, instance, status, pid, start_ticks, boot_id, port, host, argv, log_path, owner_pid, "
    "owner_start_ticks, started_at, ready_at, last_used, config_hash, exit_code, error, spec, "
    "max_concurrent, pool, memory, memory_source, pin, monitor_pid, monitor_start_ticks, origin, restarts";
constexpr int k_column_count = 28;
const std::string k_select = std::string("SELECT ") + k_column_list + " FROM servers ";

std::vector<ServerRow> rows(Stmt& s) {
    std::vector<ServerRow> out;
    while (s.step()) {
        ServerRow r;
        r.name = s.str(0);
        r.instance = s.str(1);
        r.status = s.str(2);
        r.server = Identity{static_cast<pid_t>(s.i64(3)), static_cast<std::uint64_t>(s.i64(4)), s.str(5)};
        r.port = s.opt_i64(6);
        r.host = s.str(7);
        r.argv_json = s.str(8);
        r.log_path = s.str(9);
        r.owner_pid = s.opt_i64(10);
        r.owner_start_ticks = s.opt_i64(11);
        r.started_at = s.opt_i64(12);
        r.ready_at = s.opt_i64(13);
        r.last_used = s.opt_i64(14);
        r.config_hash = s.str(15);
        r.exit_code = s.opt_i64(16);
        r.error = s.str(17);
        r.spec_json = s.str(18);
        r.max_concurrent = s.opt_i64(19);
        r.pool = s.str(20);
        r.memory = s.opt_i64(21);
        r.memory_source = s.str(22);
        r.pin = s.i64(23) != 0;
        r.monitor = Identity{static_cast<pid_t>(s.i64(24)), static_cast<std::uint64_t>(s.i64(25)), r.server.boot_id};
        r.origin = s.str(26);
        r.restarts = s.i64(27);
        // SQLite checks the CHECK constraints on writes only: a damaged file can hold any bytes.
        // A row llmctl could not have written is refused rather than acted on (a start took an
        // unknown status for "dead" and killed a live server: found by the corruption test).
        bool admitting = r.status == "admitting";
        bool status_ok = admitting || r.status == "starting" || r.status == "running" || r.status == "stopping" || r.status == "failed" ||
                         r.status == "restarting";
        bool pid_ok = admitting ? r.server.pid == 0 && r.owner_pid.value_or(0) > 0 : r.server.pid > 0;
        if (!status_ok || !pid_ok || !valid_model_name(r.name) || r.instance.empty())
            throw Error(Exit::failure,
                        fmt::format("state file {} is damaged: server row \"{}\" (status \"{}\", pid {}) is not one llmctl writes",
                                    s.store().path(), r.name, r.status, r.server.pid),
                        k_hint_corrupt);
        out.push_back(std::move(r));
    }
    return out;
}

} // namespace

std::vector<ServerRow> load_servers(Store& store) {
    static const std::string sql = k_select + "ORDER BY name"; // (one address: the connection's statement cache keys on it)
    auto s = store.prepare(sql.c_str());
    return rows(s);
}

std::vector<ServerRow> load_pool_servers(Store& store, const std::string& pool) {
    // The columns in their places, but NULL for the texts an admission has no use for (argv,
    // log_path, error, spec): reading them was a third of a decision among 50 servers.
    static const std::string sql =
        "SELECT name, instance, status, pid, start_ticks, boot_id, port, host, NULL, NULL, owner_pid, "
        "owner_start_ticks, started_at, ready_at, last_used, config_hash, exit_code, NULL, NULL, "
        "max_concurrent, pool, memory, memory_source, pin, monitor_pid, monitor_start_ticks, NULL, restarts FROM servers "
        "WHERE pool=? ORDER BY name";
    auto s = store.prepare(sql.c_str());
    s.bind(1, pool);
    return rows(s);
}

std::optional<ServerRow> find_server(Store& store, const std::string& name) {
    static const std::string sql = k_select + "WHERE name=?";
    auto s = store.prepare(sql.c_str());
    s.bind(1, name);
    auto r = rows(s);
    if (r.empty()) return std::nullopt;
    return r.front();
}

namespace {

// insert_server's statement (one address: the connection's statement cache keys on it).
const char* insert_sql() {
    static const std::string sql = [] {
        std::string q = std::string("INSERT INTO servers(") + k_column_list + ") VALUES(?";
        for (int i = 1; i < k_column_count; ++i) q += ",?";
        return q + ")";
    }();
    return sql.c_str();
}

} // namespace

void warm_server_insert(Store& store) { store.prepare(insert_sql()); }

void insert_server(Store& store, const ServerRow& r) {
    auto s = store.prepare(insert_sql());
    auto text_or_null = [&](int i, const std::string& v) { v.empty() ? s.bind(i, nullptr) : s.bind(i, v); };
    s.bind(1, r.name)
        .bind(2, r.instance)
        .bind(3, r.status)
        .bind(4, r.server.pid)
        .bind(5, static_cast<std::int64_t>(r.server.start_ticks))
        .bind(6, r.server.boot_id)
        .bind(7, r.port)
        .bind(8, r.host)
        .bind(9, r.argv_json)
        .bind(10, r.log_path)
        .bind(11, r.owner_pid)
        .bind(12, r.owner_start_ticks)
        .bind(13, r.started_at)
        .bind(14, r.ready_at)
        .bind(15, r.last_used)
        .bind(16, r.config_hash)
        .bind(17, r.exit_code);
    text_or_null(18, r.error);
    text_or_null(19, r.spec_json);
    s.bind(20, r.max_concurrent);
    text_or_null(21, r.pool);
    s.bind(22, r.memory);
    text_or_null(23, r.memory_source);
    s.bind(24, std::int64_t{r.pin});
    s.bind(25, r.monitor.pid);
    s.bind(26, static_cast<std::int64_t>(r.monitor.start_ticks));
    text_or_null(27, r.origin);
    s.bind(28, r.restarts);
    s.run();
}

Identity owner_of(const ServerRow& r) {
    return Identity{static_cast<pid_t>(r.owner_pid.value_or(0)), static_cast<std::uint64_t>(r.owner_start_ticks.value_or(0)), boot_id()};
}

bool owner_alive(const ServerRow& r) {
    auto o = owner_of(r);
    return o.pid > 0 && is_alive(o);
}

int slot_cap(const ServerRow& row, int configured) {
    if (!row.max_concurrent || *row.max_concurrent == configured) return configured;
    if (row.status == "failed" || !is_alive(row.server)) return configured; // no server holds a cap
    return static_cast<int>(std::max<std::int64_t>(1, *row.max_concurrent));
}

std::string effective_status(const ServerRow& row) {
    if (row.status == "failed") return row.status;
    if (row.status == "admitting") return owner_alive(row) ? row.status : "dead";  // no process yet: its start is what lives
    if (row.status == "restarting") return owner_alive(row) ? row.status : "dead"; // its restarter is what lives
    return is_alive(row.server) ? row.status : "dead";
}

Identity identity_at(Stmt& q, int col) {
    return Identity{static_cast<pid_t>(q.i64(col)), static_cast<std::uint64_t>(q.i64(col + 1)), q.str(col + 2)};
}

} // namespace llmctl
