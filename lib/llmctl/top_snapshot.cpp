#include "llmctl/top_snapshot.hpp"

#include "llmctl/exits.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/slots.hpp"
#include "llmctl/store.hpp"

#include <map>
#include <unistd.h>

namespace llmctl {

namespace {

constexpr std::int64_t k_rate_window_ms = 60'000;

// Tokens out per model of the requests that ended in the last minute.
std::map<std::string, std::int64_t> recent_tokens(Store& store, std::int64_t now) {
    std::map<std::string, std::int64_t> out;
    Stmt q = store.prepare("SELECT model, SUM(tokens_out) FROM requests WHERE at > ? GROUP BY model");
    q.bind(1, now - k_rate_window_ms);
    while (q.step()) out[q.str(0)] = q.i64(1);
    return out;
}

TopServer server_of(const ServerRow& r, const LeaseCounts& use, const Config* config, const std::map<std::string, std::int64_t>& tokens,
                    const std::map<std::string, ExitRecord>& exits) {
    static const long page = ::sysconf(_SC_PAGESIZE);
    TopServer s;
    s.name = r.name;
    s.status = effective_status(r);
    s.pid = r.server.pid;
    s.port = r.port;
    const bool gone = s.status == "dead" || s.status == "failed" || s.status == "restarting";
    if (!gone) {
        s.up_since = r.ready_at ? r.ready_at : r.started_at;
        if (auto st = read_proc_stat(r.server.pid)) s.rss = st->rss_pages * static_cast<std::uint64_t>(page);
    }
    s.memory = r.memory;
    s.memory_source = r.memory_source;
    s.pool = r.pool;
    s.active = use.active;
    s.queued = use.queued;
    const ModelConfig* m = config ? config->find(r.name) : nullptr;
    s.cap = slot_cap(r, m ? std::max(1, m->max_concurrent) : 0);
    if (auto t = tokens.find(r.name); t != tokens.end()) s.tokens_per_s = static_cast<double>(t->second) * 1000.0 / k_rate_window_ms;
    if (auto e = exits.find(r.name); e != exits.end()) s.last_exit = e->second.cause;
    s.restarts = r.restarts;
    return s;
}

} // namespace

TopSnapshot read_top(const std::string& state_dir, const Config* config, int events) {
    TopSnapshot t;
    t.at = now_ms();
    std::optional<Store> store;
    if (check_state_dir(state_dir)) store = Store::open_read(state_db_path(state_dir));
    if (!store) {
        t.pools = pool_reports(nullptr, config);
        return t;
    }
    t.state_file = true;
    {
        Transaction snap(*store, Transaction::Kind::deferred);
        const auto rows = load_servers(*store);
        const auto use = live_leases_by_model(*store);
        const auto tokens = recent_tokens(*store, t.at);
        const auto exits = last_exits(*store);
        for (const ServerRow& r : rows) {
            auto u = use.find(r.name);
            t.servers.push_back(server_of(r, u == use.end() ? LeaseCounts{} : u->second, config, tokens, exits));
        }
        t.pools = pool_reports(&*store, config);
        t.gateways = live_gateways(*store);
    }
    EventQuery q;
    q.last = events;
    t.events = read_events(state_dir, q);
    return t;
}

} // namespace llmctl
