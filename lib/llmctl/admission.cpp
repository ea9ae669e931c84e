#include "llmctl/admission.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/exec_users.hpp"
#include "llmctl/files.hpp"
#include "llmctl/gpu.hpp"
#include "llmctl/lookup.hpp"
#include "llmctl/memory_estimate.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/supervisor.hpp"

#include <algorithm>
#include <map>
#include <fmt/format.h>
#include <sstream>
#include <unistd.h>

namespace llmctl {

namespace {

std::optional<std::uint64_t> measured_footprint(Store& store, const std::string& model, const std::string& hash) {
    auto q = store.prepare("SELECT measured FROM footprints WHERE model=? AND config_hash=?");
    q.bind(1, model).bind(2, hash);
    if (!q.step()) return std::nullopt;
    return static_cast<std::uint64_t>(std::max<std::int64_t>(0, q.i64(0)));
}

// MemTotal of /proc/meminfo, in bytes.
std::uint64_t machine_memory() {
    auto text = read_file("/proc/meminfo");
    std::istringstream in(text.value_or(""));
    for (std::string key; in >> key;) {
        std::uint64_t kib = 0;
        if (key == "MemTotal:" && in >> kib) return kib * 1024;
        in.ignore(1 << 10, '\n');
    }
    throw Error(Exit::failure, "cannot read MemTotal from /proc/meminfo", "give the pool's memory instead of \"auto\"");
}

// Leases with a live owner, by model: {active, waiting}; one query for the whole table.
std::map<std::string, std::pair<int, int>> live_leases(Store& store, Liveness& alive) {
    auto q = store.prepare("SELECT model, state, owner_pid, owner_start_ticks, owner_boot_id FROM leases");
    std::map<std::string, std::pair<int, int>> n;
    while (q.step())
        if (alive(identity_at(q, 2))) (q.str(1) == "active" ? n[q.str(0)].first : n[q.str(0)].second) += 1;
    return n;
}

// `llmctl exec` users with a live owner, by server instance.
std::map<std::string, int> live_exec_users_by_instance(Store& store, Liveness& alive) {
    auto q = store.prepare("SELECT instance, owner_pid, owner_start_ticks, owner_boot_id FROM exec_users");
    std::map<std::string, int> n;
    while (q.step())
        if (alive(identity_at(q, 1))) ++n[q.str(0)];
    return n;
}

// Whether a row's memory is held now: its server lives, or (admitting) its start does.
bool holds_memory(const ServerRow& r) {
    if (r.status == "admitting") return owner_alive(r);
    return r.status != "failed" && is_alive(r.server);
}

// Why a holder cannot be evicted now, for the waiting message.
std::string why_held(const PoolHolder& h) {
    const std::string who = fmt::format("{} ({})", h.row.name, format_memory(h.memory));
    if (h.row.status == "admitting") return who + " is waiting to start";
    if (h.row.status == "starting") return who + " is starting";
    if (h.row.status == "stopping") return who + " is stopping";
    if (h.in_flight > 0) return fmt::format("{} is serving {} request{}", who, h.in_flight, h.in_flight == 1 ? "" : "s");
    if (h.waiting > 0) return fmt::format("{} has {} request{} waiting", who, h.waiting, h.waiting == 1 ? "" : "s");
    if (h.exec_users > 0) return who + " is in use by llmctl exec";
    return who + " is pinned";
}

} // namespace

std::string format_memory(std::uint64_t bytes) {
    const double gib = static_cast<double>(bytes) / (1ull << 30);
    if (gib >= 1) return fmt::format("{:.1f} GiB", gib);
    return fmt::format("{:.0f} MiB", static_cast<double>(bytes) / (1ull << 20));
}

std::uint64_t pool_budget(const PoolConfig& p) {
    if (p.memory) return *p.memory;
    if (p.kind == "gpu" && nvidia_smi_installed()) {
        if (auto total = gpu_memory_total(p.gpu)) return *total;
        // Never the machine's memory for a GPU that is there but did not answer: that would
        // overcommit it.
        throw Error(Exit::server,
                    fmt::format("pool \"{}\": nvidia-smi did not say the memory of GPU {} (memory = \"auto\")", p.name, p.gpu),
                    fmt::format("check nvidia-smi -i {}, or give the pool's memory ({})", p.gpu, p.at));
    }
    return machine_memory(); // no nvidia-smi: the machine's (llmctl.toml(5), POOL KEYS)
}

Footprint expected_footprint(const ModelConfig& m, const std::vector<std::string>& expanded_argv, std::uint64_t budget,
                             const std::string& pool) {
    Footprint f;
    if (m.memory_auto) {
        std::map<std::string, std::string> env; // as the server gets them (placeholders filled in)
        for (const auto& [k, v] : m.env) env[k] = expand_placeholders(v, m.host, 0, m.name);
        const std::string cwd = m.cwd.empty() ? std::string() : expand_placeholders(m.cwd, m.host, 0, m.name);
        try {
            f.bytes = estimate_memory(expanded_argv, cwd, env).total();
        } catch (const Error& e) {
            const std::string what = e.what();
            throw Error(e.code(),
                        fmt::format("{}: model \"{}\": {}{}", m.memory_at, m.name,
                                    what.starts_with("memory = ") ? "" : "memory = \"auto\": ", what),
                        e.hint().empty() ? "memory = \"auto\" reads the GGUF header of the command's -m (a relative path is taken from the "
                                           "model's cwd); fix the path, or declare its memory (memory = \"9GiB\")"
                                         : e.hint());
        }
        f.source = "estimated";
    } else {
        f.bytes = m.memory.value_or(0);
        f.source = "declared";
    }
    if (f.bytes > budget)
        throw Error(Exit::config,
                    fmt::format("{}: model \"{}\" takes {} ({}), more than the whole of pool \"{}\" ({})", m.memory_at, m.name,
                                format_memory(f.bytes), f.source, pool, format_memory(budget)),
                    "it could never start: give the pool more memory, or the model less (a smaller -c, a smaller quantisation)");
    return f;
}

Footprint with_measured(Store& store, const ModelConfig& m, Footprint f) {
    if (auto measured = measured_footprint(store, m.name, footprint_hash(m)); measured && *measured > f.bytes) {
        f.bytes = *measured;
        f.source = "measured";
    }
    return f;
}

std::vector<std::string> check_pool_memory(const Config& cfg) {
    std::vector<std::string> problems;
    for (const auto& [name, m] : cfg.models) {
        const PoolConfig* pool = cfg.pool_of(m);
        if (!pool || !m.memory_auto) continue;
        std::vector<std::string> argv;
        for (const auto& a : m.command) argv.push_back(expand_placeholders(a, m.host, 0, m.name));
        try {
            expected_footprint(m, argv, pool_budget(*pool), pool->name);
        } catch (const Error& e) {
            problems.push_back(e.what());
        }
    }
    return problems;
}

std::uint64_t PoolState::used() const {
    std::uint64_t n = 0;
    for (const auto& h : holders) n += h.memory;
    return n;
}

bool Liveness::operator()(const Identity& id) {
    auto [it, fresh] = seen_.try_emplace(id.pid, std::pair{id, false});
    if (fresh || it->second.first != id) it->second = {id, is_alive(id)};
    return it->second.second;
}

PoolState load_pool(Store& store, const std::string& pool, std::uint64_t budget, const Config* config, Liveness& alive) {
    PoolState s;
    s.name = pool;
    s.budget = budget;
    const auto leases = live_leases(store, alive);
    const auto execs = live_exec_users_by_instance(store, alive);
    for (auto& row : load_pool_servers(store, pool)) {
        if (row.status == "failed" || !alive(row.status == "admitting" ? owner_of(row) : row.server)) continue;
        PoolHolder h;
        h.memory = static_cast<std::uint64_t>(std::max<std::int64_t>(0, row.memory.value_or(0)));
        if (auto l = leases.find(row.name); l != leases.end()) std::tie(h.in_flight, h.waiting) = l->second;
        if (auto x = execs.find(row.instance); x != execs.end()) h.exec_users = x->second;
        const ModelConfig* m = config ? config->find(row.name) : nullptr;
        h.pinned = row.pin || (m && m->pin);
        h.row = std::move(row);
        s.holders.push_back(std::move(h));
    }
    return s;
}

AdmissionPlan plan_admission(const PoolState& pool, std::uint64_t need) {
    AdmissionPlan plan;
    std::uint64_t used = pool.used();
    if (used + need <= pool.budget) return plan;
    std::vector<const PoolHolder*> candidates;
    for (const auto& h : pool.holders)
        if (h.evictable()) candidates.push_back(&h);
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const PoolHolder* a, const PoolHolder* b) { return a->row.last_used.value_or(0) < b->row.last_used.value_or(0); });
    for (const PoolHolder* c : candidates) {
        if (used + need <= pool.budget) break;
        plan.victims.push_back(c->row);
        used -= c->memory;
    }
    if (used + need <= pool.budget) {
        plan.kind = AdmissionPlan::Kind::evict;
        return plan;
    }
    plan.kind = AdmissionPlan::Kind::wait;
    plan.victims.clear();
    for (const auto& h : pool.holders)
        if (!h.evictable()) plan.holders += (plan.holders.empty() ? "" : ", ") + why_held(h);
    return plan;
}

std::vector<AdmissionQueue::Place> AdmissionQueue::reclaim_dead(Store& store, const std::string& pool, bool keep) {
    auto q = store.prepare("SELECT id, owner_pid, owner_start_ticks, owner_boot_id, pool, model FROM admissions WHERE pool=? OR ?=''");
    q.bind(1, pool).bind(2, pool);
    std::vector<Place> dead;
    while (q.step())
        if (!is_alive(identity_at(q, 1))) dead.push_back(Place{q.i64(0), q.str(4), q.str(5), static_cast<pid_t>(q.i64(1))});
    if (!keep)
        for (const auto& p : dead) store.prepare("DELETE FROM admissions WHERE id=?").bind(1, p.id).run();
    return dead;
}

std::int64_t AdmissionQueue::place_of(Store& store, const std::string& model, const Identity& me) {
    auto q = store.prepare("SELECT id FROM admissions WHERE model=? AND owner_pid=? AND owner_start_ticks=? AND owner_boot_id=?");
    q.bind(1, model).bind(2, me.pid).bind(3, static_cast<std::int64_t>(me.start_ticks)).bind(4, me.boot_id);
    return q.step() ? q.i64(0) : 0;
}

std::int64_t AdmissionQueue::head(Store& store, const std::string& pool) {
    auto q = store.prepare("SELECT min(id) FROM admissions WHERE pool=?");
    q.bind(1, pool);
    return q.step() && !q.is_null(0) ? q.i64(0) : 0;
}

std::int64_t AdmissionQueue::join(Store& store, const std::string& pool, const std::string& model, std::uint64_t need, const Identity& me) {
    store
        .prepare("INSERT INTO admissions(pool, model, need, owner_pid, owner_start_ticks, owner_boot_id, created_at) "
                 "VALUES(?,?,?,?,?,?,?)")
        .bind(1, pool)
        .bind(2, model)
        .bind(3, static_cast<std::int64_t>(need))
        .bind(4, me.pid)
        .bind(5, static_cast<std::int64_t>(me.start_ticks))
        .bind(6, me.boot_id)
        .bind(7, now_ms())
        .run();
    return store.last_insert_id();
}

void AdmissionQueue::leave(Store& store, const std::string& model, const Identity& me) {
    store.prepare("DELETE FROM admissions WHERE model=? AND owner_pid=? AND owner_start_ticks=? AND owner_boot_id=?")
        .bind(1, model)
        .bind(2, me.pid)
        .bind(3, static_cast<std::int64_t>(me.start_ticks))
        .bind(4, me.boot_id)
        .run();
}

int AdmissionQueue::ahead_of(Store& store, const std::string& pool, std::int64_t id) {
    auto q = store.prepare("SELECT count(*) FROM admissions WHERE pool=? AND id<?");
    q.bind(1, pool).bind(2, id);
    return q.step() ? static_cast<int>(q.i64(0)) : 0;
}

std::vector<PoolReport> pool_reports(Store* store, const Config* config) {
    std::map<std::string, PoolReport> pools;
    if (config)
        for (const auto& [name, p] : config->pools) {
            auto& r = pools[name];
            r.name = name;
            r.kind = p.kind;
            r.budget = pool_budget(p);
        }
    std::vector<ServerRow> rows;
    if (store) rows = load_servers(*store);
    for (const auto& row : rows) {
        if (row.pool.empty() || !holds_memory(row)) continue;
        auto& r = pools[row.pool];
        r.name = row.pool;
        (row.status == "admitting" ? r.reserved : r.used) += static_cast<std::uint64_t>(std::max<std::int64_t>(0, row.memory.value_or(0)));
        r.servers.push_back(row.name);
    }
    if (store) {
        auto q = store->prepare("SELECT pool, owner_pid, owner_start_ticks, owner_boot_id FROM admissions ORDER BY id");
        while (q.step())
            if (is_alive(identity_at(q, 1))) {
                auto& r = pools[q.str(0)];
                r.name = q.str(0);
                ++r.queued;
            }
    }
    std::vector<PoolReport> out;
    for (auto& [_, r] : pools) out.push_back(std::move(r));
    return out;
}

AdmissionPreview preview_admission(const std::string& state_dir, const ModelConfig& m, const Config& config) {
    AdmissionPreview p;
    p.pool = config.pool_of(m);
    if (p.pool) {
        p.budget = pool_budget(*p.pool);
        std::vector<std::string> argv;
        for (const auto& a : m.command) argv.push_back(expand_placeholders(a, m.host, 0, m.name));
        p.need = expected_footprint(m, argv, p.budget, p.pool->name);
    }
    auto store = Store::open_read(state_db_path(state_dir));
    if (!store) return p; // nothing runs: it fits
    Transaction snap(*store, Transaction::Kind::deferred);
    p.row = find_server(*store, m.name);
    if (!p.pool) return p;
    p.need = with_measured(*store, m, p.need);
    Liveness alive;
    PoolState state = load_pool(*store, p.pool->name, p.budget, &config, alive);
    p.used = state.used();
    auto q = store->prepare("SELECT owner_pid, owner_start_ticks, owner_boot_id FROM admissions WHERE pool=?");
    q.bind(1, p.pool->name);
    while (q.step()) p.queued += is_alive(identity_at(q, 0)) ? 1 : 0;
    p.plan = plan_admission(state, p.need.bytes);
    if (p.queued > 0) {
        p.plan.kind = AdmissionPlan::Kind::wait;
        p.plan.victims.clear();
        p.plan.holders = fmt::format("{} start{} ahead of it in the queue", p.queued, p.queued == 1 ? " is" : "s are");
    }
    return p;
}

std::optional<std::uint64_t> record_measured_memory(const std::string& state_dir, const ServerRow& row, const PoolConfig& pool) {
    static const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const auto procs = server_processes(row.server, row.instance);
    std::uint64_t rss = 0;
    if (pool.kind == "gpu") { // its processes' memory on the pool's GPU, where nvidia-smi says
        std::vector<pid_t> pids;
        for (const auto& p : procs) pids.push_back(p.pid);
        rss = gpu_memory_of(pool.gpu, pids).value_or(0);
    } else {
        for (const auto& p : procs)
            if (auto st = read_proc_stat(p.pid)) rss += st->rss_pages * page;
    }
    if (rss == 0) return std::nullopt;
    // Keyed by what the memory depends on (footprint_hash: not host or port), from the row's spec.
    auto spec = model_from_spec(Defaults{}, row.name, row.spec_json);
    const std::string key = spec ? footprint_hash(*spec) : row.config_hash;
    auto locked = open_locked(state_dir);
    auto& store = locked.store;
    Transaction tx(store);
    store
        .prepare(
            "INSERT INTO footprints(model, config_hash, measured, measured_at) VALUES(?,?,?,?) "
            "ON CONFLICT(model, config_hash) DO UPDATE SET measured=max(measured, excluded.measured), measured_at=excluded.measured_at")
        .bind(1, row.name)
        .bind(2, key)
        .bind(3, static_cast<std::int64_t>(rss))
        .bind(4, now_ms())
        .run();
    store.prepare("UPDATE servers SET memory=?, memory_source='measured' WHERE name=? AND instance=? AND (memory IS NULL OR memory<?)")
        .bind(1, static_cast<std::int64_t>(rss))
        .bind(2, row.name)
        .bind(3, row.instance)
        .bind(4, static_cast<std::int64_t>(rss))
        .run();
    tx.commit();
    return rss;
}

} // namespace llmctl
