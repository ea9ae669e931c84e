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
                                       "FROM exec_users {} ORDER BY id",
                                       where)
                               .c_str());
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

void delete_row(Store& store, std::int64_t id) { store.prepare("DELETE FROM exec_users WHERE id=?").bind(1, id).run(); }

// Passes the duty of `gone` (already deleted or dead) to the oldest live user of its instance;
// returns false when there is none (the duty is then whoever's who asked).
bool pass_duty(Store& store, const Row& gone) {
    for (auto& other : rows_of(store, "WHERE instance=?", gone.instance)) {
        if (other.id == gone.id || !is_alive(other.owner)) continue;
        store.prepare("UPDATE exec_users SET stops_server=1 WHERE id=?").bind(1, other.id).run();
        return true;
    }
    return false;
}

// The duty to stop the server of `r` fell to the calling process: mark the server `stopping` with
// it as the owner, in the same transaction, so that if the caller dies before it has stopped the
// server, the next reap or start finishes the stop (the duty is never lost between two steps).
void take_duty(Store& store, const Row& r) {
    Identity me = self_identity();
    store.prepare("UPDATE servers SET status='stopping', owner_pid=?, owner_start_ticks=? WHERE name=? AND instance=? AND status<>'failed'")
        .bind(1, me.pid)
        .bind(2, static_cast<std::int64_t>(me.start_ticks))
        .bind(3, r.model)
        .bind(4, r.instance)
        .run();
}

void reclaimed_event(Store& store, const Row& r, const char* what) {
    store.add_event(r.model, "exec_reclaimed", fmt::format("exec pid {} is gone{}", r.owner.pid, r.stops ? what : ""));
}

} // namespace

void use_server(Store& store, const std::string& model, const std::string& instance, bool spawned, ExecUser& user) {
    bool duty = spawned && !user.keep;
    if (user.id) {
        auto mine = rows_of(store, "WHERE id=?", std::to_string(user.id));
        if (!mine.empty()) {
            duty = duty || (mine[0].instance == instance && mine[0].stops);
            store.prepare("UPDATE exec_users SET instance=?, stops_server=? WHERE id=?")
                .bind(1, instance)
                .bind(2, duty ? 1 : 0)
                .bind(3, user.id)
                .run();
            user.instance = instance;
            return;
        }
    }
    Identity me = self_identity();
    store
        .prepare("INSERT INTO exec_users(model, instance, owner_pid, owner_start_ticks, owner_boot_id, stops_server, created_at) "
                 "VALUES(?,?,?,?,?,?,?)")
        .bind(1, model)
        .bind(2, instance)
        .bind(3, me.pid)
        .bind(4, static_cast<std::int64_t>(me.start_ticks))
        .bind(5, me.boot_id)
        .bind(6, duty ? 1 : 0)
        .bind(7, now_ms())
        .run();
    user.id = store.last_insert_id();
    user.instance = instance;
}

void adopt_exec_users(Store& store, const std::string& instance) {
    for (auto& r : rows_of(store, "WHERE instance=?", instance)) {
        if (is_alive(r.owner)) continue;
        delete_row(store, r.id);
        if (r.stops && !pass_duty(store, r)) {
            reclaimed_event(store, r, "; it had started the server, which a live start has adopted");
            continue;
        }
        reclaimed_event(store, r, "; its duty to stop the server passed on");
    }
}

bool leave_exec_user(const std::string& state_dir, std::int64_t id) {
    auto locked = open_locked(state_dir);
    auto& store = locked.store;
    Transaction tx(store);
    auto mine = rows_of(store, "WHERE id=?", std::to_string(id));
    if (mine.empty()) return false; // reclaimed meanwhile: whoever did it decided
    delete_row(store, id);
    bool stop = mine[0].stops && !pass_duty(store, mine[0]);
    if (stop) take_duty(store, mine[0]);
    tx.commit();
    return stop;
}

std::vector<OrphanedDuty> reclaim_dead_exec_users(Store& store) {
    std::vector<OrphanedDuty> to_stop;
    for (auto& r : rows_of(store, "", "")) {
        if (is_alive(r.owner)) continue;
        delete_row(store, r.id);
        reclaimed_event(store, r, "; it had started the server");
        if (r.stops && !pass_duty(store, r)) {
            take_duty(store, r);
            to_stop.push_back({r.model, r.instance});
        }
    }
    return to_stop;
}

int live_exec_users(Store& store, const std::string& instance) {
    int n = 0;
    for (auto& r : rows_of(store, "WHERE instance=?", instance)) n += is_alive(r.owner) ? 1 : 0;
    return n;
}

} // namespace llmctl
