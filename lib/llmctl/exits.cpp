#include "llmctl/exits.hpp"

#include "llmctl/process.hpp"

#include <cstring>
#include <fmt/format.h>
#include <sys/wait.h>

namespace llmctl {

namespace {

constexpr const char* k_exit_columns = "name, instance, pid, at, code, signal, core, oom, known, cause, action";

ExitRecord exit_at(Stmt& q) {
    ExitRecord e;
    e.name = q.str(0);
    e.instance = q.str(1);
    e.pid = static_cast<pid_t>(q.i64(2));
    e.at = q.i64(3);
    if (auto c = q.opt_i64(4)) e.code = static_cast<int>(*c);
    if (auto s = q.opt_i64(5)) e.signal = static_cast<int>(*s);
    e.core = q.i64(6) != 0;
    e.oom = q.i64(7) != 0;
    e.known = q.i64(8) != 0;
    e.cause = q.str(9);
    e.action = q.str(10);
    return e;
}

std::optional<std::int64_t> opt(const std::optional<int>& v) { return v ? std::optional<std::int64_t>(*v) : std::nullopt; }

} // namespace

std::string signal_name(int sig) {
    const char* abbrev = sigabbrev_np(sig);
    return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
}

ExitRecord exit_from_wait_status(int status, long long oom_kills_during, bool stopping) {
    ExitRecord e;
    e.known = true;
    if (WIFEXITED(status)) {
        e.code = WEXITSTATUS(status);
        e.cause = fmt::format("exited with code {}", *e.code);
    } else if (WIFSIGNALED(status)) {
        e.signal = WTERMSIG(status);
        e.core = WCOREDUMP(status);
        e.oom = *e.signal == SIGKILL && oom_kills_during > 0 && !stopping;
        e.cause =
            fmt::format("killed by {}{}{}", signal_name(*e.signal), e.core ? " (core dumped)" : "", e.oom ? " (likely OOM-killed)" : "");
    } else {
        e.known = false;
        e.cause = "cause unknown";
    }
    return e;
}

void record_exit(Store& store, const ExitRecord& e) {
    auto q = store.prepare("INSERT INTO exits(name, instance, pid, at, code, signal, core, oom, known, cause, action) "
                           "VALUES(?,?,?,?,?,?,?,?,?,?,?) "
                           "ON CONFLICT(instance) DO UPDATE SET at=excluded.at, code=excluded.code, signal=excluded.signal, "
                           "core=excluded.core, oom=excluded.oom, known=excluded.known, cause=excluded.cause, "
                           "action=COALESCE(exits.action, excluded.action) WHERE exits.known=0 AND excluded.known=1");
    q.bind(1, e.name)
        .bind(2, e.instance)
        .bind(3, e.pid)
        .bind(4, e.at)
        .bind(5, opt(e.code))
        .bind(6, opt(e.signal))
        .bind(7, std::int64_t{e.core})
        .bind(8, std::int64_t{e.oom})
        .bind(9, std::int64_t{e.known})
        .bind(10, e.cause);
    e.action.empty() ? q.bind(11, nullptr) : q.bind(11, e.action);
    q.run();
    store.prepare("DELETE FROM exits WHERE id <= (SELECT MAX(id) FROM exits) - ?").bind(1, std::int64_t{k_exits_kept}).run();
}

void record_unknown_exit(Store& store, const ServerRow& row) {
    if (row.server.pid <= 0 || row.status == "admitting") return;
    ExitRecord e;
    e.name = row.name;
    e.instance = row.instance;
    e.pid = row.server.pid;
    e.at = now_ms();
    e.cause = "cause unknown (no monitor saw it)";
    record_exit(store, e);
}

void set_exit_action(Store& store, const ServerRow& row, const std::string& action) {
    record_unknown_exit(store, row);
    store.prepare("UPDATE exits SET action=? WHERE instance=?").bind(1, action).bind(2, row.instance).run();
}

int restarts_since(Store& store, const std::string& name, std::int64_t since_ms) {
    auto q = store.prepare("SELECT COUNT(*) FROM exits WHERE name=? AND action='restarted' AND at>=?");
    q.bind(1, name).bind(2, since_ms);
    return q.step() ? static_cast<int>(q.i64(0)) : 0;
}

void forget_restarts(Store& store, const std::string& name) {
    store.prepare("UPDATE exits SET action='restarted (loop ended)' WHERE name=? AND action='restarted'").bind(1, name).run();
}

std::optional<ExitRecord> exit_of(Store& store, const std::string& instance) {
    static const std::string sql = fmt::format("SELECT {} FROM exits WHERE instance=?", k_exit_columns);
    auto q = store.prepare(sql.c_str());
    q.bind(1, instance);
    if (!q.step()) return std::nullopt;
    return exit_at(q);
}

std::map<std::string, ExitRecord> last_exits(Store& store) {
    static const std::string sql =
        fmt::format("SELECT {} FROM exits WHERE id IN (SELECT MAX(id) FROM exits GROUP BY name)", k_exit_columns);
    auto q = store.prepare(sql.c_str());
    std::map<std::string, ExitRecord> out;
    while (q.step()) {
        auto e = exit_at(q);
        out[e.name] = e;
    }
    return out;
}

std::vector<ExitRecord> exit_history(Store& store, const std::string& name, int limit) {
    static const std::string sql =
        fmt::format("SELECT * FROM (SELECT {}, id FROM exits WHERE ?='' OR name=? ORDER BY id DESC LIMIT ?) ORDER BY id", k_exit_columns);
    auto q = store.prepare(sql.c_str());
    q.bind(1, name).bind(2, name).bind(3, std::int64_t{limit});
    std::vector<ExitRecord> out;
    while (q.step()) out.push_back(exit_at(q));
    return out;
}

} // namespace llmctl
