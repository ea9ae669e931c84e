#include "llmctl/servers.hpp"

#include "llmctl/config.hpp"
#include "llmctl/errors.hpp"

#include <fmt/format.h>

namespace llmctl {

namespace {

constexpr const char* k_columns =
    "SELECT name, instance, status, pid, start_ticks, boot_id, port, host, argv, log_path, owner_pid, "
    "owner_start_ticks, started_at, ready_at, last_used, config_hash, exit_code, error, spec FROM servers ";

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
        // SQLite checks the CHECK constraints on writes only: a damaged file can hold any bytes.
        // A row llmctl could not have written is refused rather than acted on (a start took an
        // unknown status for "dead" and killed a live server: found by the corruption test).
        bool status_ok = r.status == "starting" || r.status == "running" || r.status == "stopping" || r.status == "failed";
        if (!status_ok || r.server.pid <= 0 || !valid_model_name(r.name) || r.instance.empty())
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
    auto s = store.prepare((std::string(k_columns) + "ORDER BY name").c_str());
    return rows(s);
}

std::optional<ServerRow> find_server(Store& store, const std::string& name) {
    auto s = store.prepare((std::string(k_columns) + "WHERE name=?").c_str());
    s.bind(1, name);
    auto r = rows(s);
    if (r.empty()) return std::nullopt;
    return r.front();
}

std::string effective_status(const ServerRow& row) {
    if (row.status == "failed") return row.status;
    return is_alive(row.server) ? row.status : "dead";
}

Identity identity_at(Stmt& q, int col) {
    return Identity{static_cast<pid_t>(q.i64(col)), static_cast<std::uint64_t>(q.i64(col + 1)), q.str(col + 2)};
}

} // namespace llmctl
