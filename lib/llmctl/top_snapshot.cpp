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

// Tokens out per second per model, of the requests that ended in the last minute; when the table
// (trimmed to its newest rows under a heavy load) does not reach back a minute, over the time it
// covers. (Beyond 1,000 requests a second through one serve the rows are a sample: request_ledger.)
std::map<std::string, double> recent_rates(Store& store, std::int64_t now) {
    std::int64_t since = now - k_rate_window_ms;
    Stmt oldest = store.prepare("SELECT MIN(id), MIN(at) FROM requests");
    if (oldest.step() && !oldest.is_null(0) && oldest.i64(0) > 1 && oldest.i64(1) > since) since = oldest.i64(1);
    const double seconds = static_cast<double>(std::max<std::int64_t>(1'000, now - since)) / 1000.0;
    std::map<std::string, double> out;
    Stmt q = store.prepare("SELECT model, SUM(tokens_out) FROM requests WHERE at > ? GROUP BY model");
    q.bind(1, since);
    while (q.step()) out[q.str(0)] = static_cast<double>(q.i64(1)) / seconds;
    return out;
}

TopServer server_of(const ServerRow& r, const LeaseCounts& use, const Config* config, const std::map<std::string, double>& rates,
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
    if (auto t = rates.find(r.name); t != rates.end()) s.tokens_per_s = t->second;
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
        const auto rates = recent_rates(*store, t.at);
        const auto exits = last_exits(*store);
        for (const ServerRow& r : rows) {
            auto u = use.find(r.name);
            t.servers.push_back(server_of(r, u == use.end() ? LeaseCounts{} : u->second, config, rates, exits));
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
