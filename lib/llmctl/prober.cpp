#include "llmctl/prober.hpp"

#include "llmctl/address.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/health.hpp"
#include "llmctl/http_client.hpp"
#include "llmctl/json_text.hpp"
#include "llmctl/lease_broker.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/slots.hpp"
#include "llmctl/store.hpp"
#include "llmctl/supervisor.hpp"

#include <algorithm>
#include <chrono>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <thread>

namespace llmctl {

std::string probe_spec_json(const ModelConfig& m) {
    if (m.probe.empty()) return {};
    return json_text(nlohmann::json{{"kind", m.probe},
                                    {"every_ms", m.probe_every.count()},
                                    {"timeout_ms", m.probe_timeout.count()},
                                    {"stop_timeout_ms", m.stop_timeout.count()},
                                    {"model", m.model.empty() ? m.name : m.model},
                                    {"health", m.health},
                                    {"restart", m.restart},
                                    {"origin", m.origin},
                                    {"max_concurrent", std::max(1, m.max_concurrent)}});
}

ProbeSpec parse_probe_spec(const std::string& json) {
    auto j = nlohmann::json::parse(json, nullptr, false);
    ProbeSpec s;
    try {
        if (!j.is_object()) throw nlohmann::json::type_error::create(302, "not an object", nullptr);
        s.kind = j.at("kind").get<std::string>();
        s.every = Millis(std::max<std::int64_t>(100, j.at("every_ms").get<std::int64_t>()));      // never a busy loop
        s.timeout = Millis(std::max<std::int64_t>(1000, j.at("timeout_ms").get<std::int64_t>())); // (0 would be no limit)
        s.stop_timeout = Millis(j.value("stop_timeout_ms", std::int64_t{10'000}));
        s.model = j.at("model").get<std::string>();
        s.health = j.value("health", std::string("/health"));
        s.restart = j.value("restart", std::string("no"));
        s.origin = j.value("origin", std::string());
        s.max_concurrent = j.value("max_concurrent", 1);
    } catch (const nlohmann::json::exception&) {
        throw Error(Exit::usage, "llmctl probe: --spec is not a probe spec (llmctl-monitor passes it)");
    }
    if (s.kind != "health" && s.kind != "completion") throw Error(Exit::usage, fmt::format("llmctl probe: unknown probe \"{}\"", s.kind));
    return s;
}

namespace {

using clock = std::chrono::steady_clock;

// What the prober finds of its server: still ours (the row), gone for good (dead, or the row
// names another instance: the prober's work is over), or not known now (no state file: it may
// be rebuilt; try again later).
struct Look {
    std::optional<ServerRow> row;
    bool gone = false;
};
Look look_at(const std::string& state_dir, const std::string& name, const std::string& instance, const Identity& server) {
    if (!is_alive(server)) return {std::nullopt, true};
    auto reader = Store::open_read(state_db_path(state_dir));
    if (!reader) return {};
    auto row = find_server(*reader, name);
    if (!row || row->instance != instance) return {std::nullopt, true};
    return {row, false};
}

// The restart policy in force now: the model's in the config file it came from, read again (an
// edit since its start counts, as it does for the monitor's record of the exit), else the one it
// started with.
std::string policy_now(const ProbeSpec& spec, const std::string& name) {
    try {
        Config cfg = spec.origin == "<built-in>" ? builtin_config() : load_config_file(spec.origin);
        const ModelConfig* m = cfg.find(name);
        return m ? m->restart : cfg.defaults.restart;
    } catch (const Error&) {
        return spec.restart;
    }
}

// True when the slot's holders (active leases with a live owner; at least one) received no byte
// since `since` (ms since the epoch): a server that answers nobody.
bool holders_silent(const std::string& state_dir, const std::string& model, std::int64_t since) {
    auto reader = Store::open_read(state_db_path(state_dir));
    if (!reader) return false;
    auto q = reader->prepare("SELECT max(coalesce(acquired_at, 0), coalesce(progress_at, 0)), owner_pid, owner_start_ticks, owner_boot_id "
                             "FROM leases WHERE model=? AND state='active'");
    q.bind(1, model);
    int holders = 0;
    while (q.step()) {
        if (!is_alive(identity_at(q, 1))) continue;
        ++holders;
        if (q.i64(0) > since) return false; // a byte (or the slot itself) came while we waited
    }
    return holders > 0;
}

// GET the health path (/health for a model whose readiness is "tcp"): 200 within probe_timeout.
ProbeVerdict probe_health_path(const ServerRow& row, const ProbeSpec& spec) {
    const std::string path = spec.health == "tcp" ? "/health" : spec.health;
    Probe p = probe_ready(row.host, static_cast<int>(row.port.value_or(0)), path, spec.timeout);
    return {p.ok, false, p.ok ? "" : fmt::format("{} (probe_timeout {})", p.seen, format_duration(spec.timeout))};
}

ProbeVerdict probe_completion(const std::string& state_dir, const std::string& name, const ServerRow& row, const ProbeSpec& spec) {
    SlotRequest sr;
    sr.model = name;
    sr.max_concurrent = spec.max_concurrent;
    sr.managed = true;
    sr.queue_timeout = spec.timeout;
    const std::int64_t asked = now_ms();
    std::optional<Slot> slot;
    try {
        slot.emplace(Slot::acquire(state_dir, sr));
    } catch (const Error& e) {
        if (e.code() != Exit::timeout) throw;
        if (holders_silent(state_dir, name, asked))
            return {false, true, fmt::format("no slot within {} while its holder received nothing", format_duration(spec.timeout))};
        return {}; // busy answering: that is alive
    }
    nlohmann::json body{{"model", spec.model},
                        {"messages", nlohmann::json::array({{{"role", "user"}, {"content", "Say OK."}}})},
                        {"max_tokens", 1},
                        {"stream", false}};
    HttpTimeouts t;
    t.connect = t.first_byte = t.stall = spec.timeout;
    t.total = spec.timeout;
    try {
        HttpResult r = http_post_stream(
            parse_url(row.url()), "/v1/chat/completions", body.dump(), "", t, [](std::string_view) {}, [] { return false; });
        if (r.status / 100 != 2) return {false, false, fmt::format("a one-token completion was answered HTTP {}", r.status)};
        return {};
    } catch (const Error& e) {
        return {false, false, fmt::format("a one-token completion failed: {}", e.what())};
    }
}

// What act_on_wedged did.
enum class Acted { not_ours, stopped, left_running };

// The server is wedged: an event, a note, and, unless restart = "no", a stop (the monitor's
// record of the exit then restarts it).
Acted act_on_wedged(const std::string& state_dir, const std::string& name, const std::string& instance, const Identity& server,
                    const ProbeSpec& spec, const std::string& why, const std::function<void(const std::string&)>& note) {
    const std::string policy = policy_now(spec, name);
    const bool restart = policy != "no";
    {
        auto locked = open_locked(state_dir);
        Transaction tx(locked.store);
        auto row = find_server(locked.store, name);
        if (!row || row->instance != instance || row->status != "running") return Acted::not_ours;
        locked.store.add_event(
            name, "wedged",
            fmt::format("pid {}: {}; {}", server.pid, why,
                        restart ? fmt::format("stopping it (restart = \"{}\")", spec.restart) : "left running (restart = \"no\")"));
        if (restart)
            locked.store.prepare("UPDATE servers SET error=? WHERE name=? AND instance=?")
                .bind(1, wedged_error(why))
                .bind(2, name)
                .bind(3, instance)
                .run();
        tx.commit();
    }
    note(wedged_error(why) + (restart ? "; stopping it" : ""));
    if (!restart) return Acted::left_running;
    terminate_server(server, instance, spec.stop_timeout);
    return Acted::stopped;
}

} // namespace

std::string wedged_error(const std::string& why) { return "wedged: " + why; }
bool stopped_as_wedged(const std::string& row_error) { return row_error.starts_with("wedged: "); }

void run_prober(const std::string& state_dir, const std::string& name, const std::string& instance, const Identity& server,
                const ProbeSpec& spec, const std::function<void(const std::string&)>& note) {
    bool reported = false; // a server left running (restart = "no") is reported once per wedging
    int silent = 0;        // no-slot verdicts in a row
    for (auto next = clock::now() + spec.every;;) {
        while (clock::now() < next) {
            if (!is_alive(server)) return;
            std::this_thread::sleep_for(std::min<clock::duration>(next - clock::now(), std::chrono::milliseconds(200)));
        }
        next = clock::now() + spec.every;
        try {
            Look look = look_at(state_dir, name, instance, server);
            if (look.gone) return;
            if (!look.row || look.row->status != "running") continue; // still loading, on its way out, or not known now
            ProbeVerdict v =
                spec.kind == "completion" ? probe_completion(state_dir, name, *look.row, spec) : probe_health_path(*look.row, spec);
            silent = v.no_slot ? silent + 1 : 0;
            if (v.ok || (v.no_slot && silent < 2)) {
                reported = reported && !v.ok;
                continue;
            }
            Look again = look_at(state_dir, name, instance, server);
            if (again.gone) return; // it died meanwhile: not wedged
            if (reported) continue;
            if (act_on_wedged(state_dir, name, instance, server, spec, v.why, note) != Acted::left_running) return;
            reported = true;
        } catch (const Error& e) {
            note(fmt::format("probe: {}", e.what())); // the state file, not the server: try again later
        }
    }
}

ProgressNote::ProgressNote(std::string state_dir, bool wanted, LeaseBroker* broker)
    : dir_(std::move(state_dir)), wanted_(wanted), broker_(broker), last_(now_ms()) {}

void ProgressNote::byte_arrived(std::int64_t lease) {
    if (!wanted_ || lease == 0) return;
    std::int64_t now = now_ms();
    if (now - last_ < 1000) return;
    last_ = now;
    auto write = [now, lease](Store& store) {
        store.prepare("UPDATE leases SET progress_at=? WHERE id=?").bind(1, now).bind(2, lease).run();
    };
    try {
        if (broker_)
            broker_->submit(write, [](std::exception_ptr) {}); // (a failed round: the next byte tries again)
        else if (auto store = Store::open_update(state_db_path(dir_)))
            write(*store);
    } catch (const Error&) {
        // A full disk: the probe may then take a busy server for a silent one.
    }
}

} // namespace llmctl
