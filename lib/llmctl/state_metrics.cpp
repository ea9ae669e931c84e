#include "llmctl/state_metrics.hpp"

#include "llmctl/admission.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/slots.hpp"
#include "llmctl/store.hpp"

#include <map>
#include <optional>

namespace llmctl {

namespace {

// One snapshot of what the metrics show.
struct Snapshot {
    bool found = false;
    std::vector<ServerRow> servers;
    std::map<std::string, LeaseCounts> leases;
    std::vector<PoolReport> pools;
    struct Totals {
        std::string model, via;
        std::int64_t status = 0, requests = 0, tokens_in = 0, tokens_out = 0, queue_ms = 0, duration_ms = 0;
    };
    std::vector<Totals> requests;
    struct EventCount {
        std::string server, kind;
        std::int64_t n = 0;
    };
    std::vector<EventCount> events;
};

Snapshot read_snapshot(const std::string& dir, const Config* config) {
    Snapshot s;
    std::optional<Store> store;
    if (check_state_dir(dir)) store = Store::open_read(state_db_path(dir));
    if (!store) {
        s.pools = pool_reports(nullptr, config);
        return s;
    }
    s.found = true;
    Transaction snap(*store, Transaction::Kind::deferred);
    s.servers = load_servers(*store);
    s.leases = live_leases_by_model(*store);
    s.pools = pool_reports(&*store, config);
    Stmt q = store->prepare("SELECT model, via, status, requests, tokens_in, tokens_out, queue_ms, duration_ms FROM request_totals ORDER "
                            "BY model, via, status");
    while (q.step()) s.requests.push_back({q.str(0), q.str(1), q.i64(2), q.i64(3), q.i64(4), q.i64(5), q.i64(6), q.i64(7)});
    Stmt e = store->prepare("SELECT server, kind, n FROM event_totals ORDER BY server, kind");
    while (e.step()) s.events.push_back({e.str(0), e.str(1), e.i64(2)});
    return s;
}

void write_servers(PromText& out, const Snapshot& s, const Config* config) {
    out.family("llmctl_server_up", "gauge", "1 when the model's server runs and answers its health check, else 0");
    for (const ServerRow& r : s.servers) out.sample({{"model", r.name}}, effective_status(r) == "running" ? 1 : 0);
    out.family("llmctl_server_status", "gauge", "1 for the status each server's row has (starting, running, stopping, failed, dead...)");
    for (const ServerRow& r : s.servers) out.sample({{"model", r.name}, {"status", effective_status(r)}}, 1);
    out.family("llmctl_server_start_time_seconds", "gauge", "When the server was started, in seconds since the epoch");
    for (const ServerRow& r : s.servers)
        if (r.started_at) out.sample({{"model", r.name}}, static_cast<double>(*r.started_at) / 1000.0);
    out.family("llmctl_server_memory_bytes", "gauge", "The memory the server counts against its pool");
    for (const ServerRow& r : s.servers)
        if (r.memory) out.sample({{"model", r.name}, {"source", r.memory_source}}, static_cast<double>(*r.memory));

    auto limit_of = [&](const std::string& model) -> std::optional<int> {
        const ModelConfig* m = config ? config->find(model) : nullptr;
        for (const ServerRow& r : s.servers)
            if (r.name == model) return slot_cap(r, m ? m->max_concurrent : 1);
        return m ? std::optional<int>(m->max_concurrent) : std::nullopt;
    };
    out.family("llmctl_slots_active", "gauge", "Requests (chat, serve, probes) holding one of the model's slots");
    for (const auto& [model, n] : s.leases) out.sample({{"model", model}}, n.active);
    out.family("llmctl_slots_queued", "gauge", "Requests waiting for one of the model's slots");
    for (const auto& [model, n] : s.leases) out.sample({{"model", model}}, n.queued);
    out.family("llmctl_slots_limit", "gauge", "The model's slots (max_concurrent)");
    std::map<std::string, int> limits;
    for (const ServerRow& r : s.servers)
        if (auto l = limit_of(r.name)) limits[r.name] = *l;
    for (const auto& [model, n] : s.leases)
        if (auto l = limit_of(model)) limits[model] = *l;
    for (const auto& [model, l] : limits) out.sample({{"model", model}}, l);
}

void write_pools(PromText& out, const Snapshot& s) {
    out.family("llmctl_pool_budget_bytes", "gauge", "A memory pool's budget");
    for (const PoolReport& p : s.pools)
        if (p.budget) out.sample({{"pool", p.name}, {"kind", p.kind}}, static_cast<double>(*p.budget));
    out.family("llmctl_pool_used_bytes", "gauge", "Memory counted against the pool by its running servers");
    for (const PoolReport& p : s.pools) out.sample({{"pool", p.name}, {"kind", p.kind}}, static_cast<double>(p.used));
    out.family("llmctl_pool_reserved_bytes", "gauge", "Memory reserved by starts waiting for their evictions");
    for (const PoolReport& p : s.pools) out.sample({{"pool", p.name}, {"kind", p.kind}}, static_cast<double>(p.reserved));
    out.family("llmctl_pool_queued_starts", "gauge", "Starts waiting for memory in the pool");
    for (const PoolReport& p : s.pools) out.sample({{"pool", p.name}, {"kind", p.kind}}, p.queued);
}

void write_counters(PromText& out, const Snapshot& s) {
    out.family("llmctl_requests_total", "counter", "Requests to models by llmctl chat and serve, by the HTTP status the client got");
    for (const auto& t : s.requests)
        out.sample({{"model", t.model}, {"via", t.via}, {"code", std::to_string(t.status)}}, static_cast<double>(t.requests));
    std::map<std::pair<std::string, std::string>, Snapshot::Totals> by_via;
    for (const auto& t : s.requests) {
        auto& sum = by_via[{t.model, t.via}];
        sum.tokens_in += t.tokens_in;
        sum.tokens_out += t.tokens_out;
        sum.queue_ms += t.queue_ms;
        sum.duration_ms += t.duration_ms;
    }
    out.family("llmctl_tokens_total", "counter",
               "Tokens of those requests: in (the prompt, as the server's usage says) and out (usage, else the chunks that carried text)");
    for (const auto& [k, t] : by_via) {
        out.sample({{"model", k.first}, {"via", k.second}, {"direction", "in"}}, static_cast<double>(t.tokens_in));
        out.sample({{"model", k.first}, {"via", k.second}, {"direction", "out"}}, static_cast<double>(t.tokens_out));
    }
    out.family("llmctl_request_queue_seconds_total", "counter", "Time those requests waited for a slot (and their model's start)");
    for (const auto& [k, t] : by_via) out.sample({{"model", k.first}, {"via", k.second}}, static_cast<double>(t.queue_ms) / 1000.0);
    out.family("llmctl_request_seconds_total", "counter", "Time those requests took, from arrival to their answer's end");
    for (const auto& [k, t] : by_via) out.sample({{"model", k.first}, {"via", k.second}}, static_cast<double>(t.duration_ms) / 1000.0);
    out.family("llmctl_events_total", "counter",
               "Events by server and kind (spawned, ready, evicted, restarted, wedged, lease_reclaimed, ...; llmctl events)");
    for (const auto& e : s.events) out.sample({{"server", e.server}, {"kind", e.kind}}, static_cast<double>(e.n));
}

} // namespace

void write_state_metrics(PromText& out, const std::string& state_dir, const Config* config) {
    const Snapshot s = read_snapshot(state_dir, config);
    out.family("llmctl_state_file", "gauge", "1 when the state file exists (0: nothing was started yet)");
    out.sample({}, s.found ? 1 : 0);
    write_servers(out, s, config);
    write_pools(out, s);
    write_counters(out, s);
}

} // namespace llmctl
