#include "llmctl/exec_users.hpp"

#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/servers.hpp"

#include <fmt/format.h>
#include <vector>

namespace llmctl {

namespace {

struct Row {
    std::int64_t id = 0;
    std::string model, instance;
    Identity owner;
    bool stops = false;
};

std::vector<Row> rows_of(Store& store, const char* where, const std::string& arg) {
    std::vector<Row> out;
    auto q = store.prepare(fmt::format("SELECT id, model, instance, owner_pid, owner_start_ticks, owner_boot_id, stops_server "
                                       "FROM exec_users {} ORDER BY id", where).c_str());
    if (!arg.empty()) q.bind(1, arg);
    while (q.step()) {
        Row r;
        r.id = q.i64(0);
        r.model = q.str(1);
        r.instance = q.str(2);
        r.owner = identity_at(q, 3);
        r.stops = q.i64(6) != 0;
        out.push_back(std::move(r));
    }
    return out;
}

// Removes `gone` (already deleted or dead); returns true when its duty to stop the server is
// now the caller's to carry out, else passes the duty to the oldest live user left.
bool hand_over(Store& store, const Row& gone) {
    if (!gone.stops) return false;
    for (auto& other : rows_of(store, "WHERE instance=?", gone.instance)) {
        if (other.id == gone.id || !is_alive(other.owner)) continue;
        store.prepare("UPDATE exec_users SET stops_server=1 WHERE id=?").bind(1, other.id).run();
        return false;
    }
    return true;
}

} // namespace

std::optional<ExecUse> add_exec_user(const std::string& state_dir, const std::string& model, int server_pid, bool stops_server) {
    auto locked = open_locked(state_dir);
    auto& store = locked.store;
    Transaction tx(store);
    auto row = find_server(store, model);
    if (!row || row->status != "running" || row->server.pid != server_pid || !is_alive(row->server)) return std::nullopt;
    Identity me = self_identity();
    store.prepare("INSERT INTO exec_users(model, instance, owner_pid, owner_start_ticks, owner_boot_id, stops_server, created_at) "
                  "VALUES(?,?,?,?,?,?,?)")
        .bind(1, model).bind(2, row->instance).bind(3, me.pid).bind(4, static_cast<std::int64_t>(me.start_ticks))
        .bind(5, me.boot_id).bind(6, stops_server ? 1 : 0).bind(7, now_ms()).run();
    ExecUse use{store.last_insert_id(), row->instance};
    tx.commit();
    return use;
}

bool leave_exec_user(const std::string& state_dir, std::int64_t id) {
    auto locked = open_locked(state_dir);
    auto& store = locked.store;
    Transaction tx(store);
    auto mine = rows_of(store, "WHERE id=?", std::to_string(id));
    if (mine.empty()) return false; // reclaimed meanwhile: whoever did it decided
    store.prepare("DELETE FROM exec_users WHERE id=?").bind(1, id).run();
    bool stop = hand_over(store, mine[0]);
    tx.commit();
    return stop;
}

std::vector<std::pair<std::string, std::string>> reclaim_dead_exec_users(Store& store) {
    std::vector<std::pair<std::string, std::string>> to_stop;
    for (auto& r : rows_of(store, "", "")) {
        if (is_alive(r.owner)) continue;
        store.prepare("DELETE FROM exec_users WHERE id=?").bind(1, r.id).run();
        store.add_event(r.model, "exec_reclaimed", fmt::format("exec pid {} is gone{}", r.owner.pid, r.stops ? "; it had started the server" : ""));
        if (hand_over(store, r)) to_stop.emplace_back(r.model, r.instance);
    }
    return to_stop;
}

} // namespace llmctl
