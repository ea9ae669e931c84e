#include "llmctl/apply.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/holds.hpp"
#include "llmctl/keep_warm.hpp"
#include "llmctl/lock.hpp"
#include "llmctl/lookup.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"
#include "llmctl/supervisor.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace llmctl {

namespace {

using enum ApplyStep::Kind;

// Whether a row was started from `cfg`'s own file as one of its models (not ad hoc).
bool from_this_config(const ServerRow& r, const Config& cfg) {
    if (r.origin.empty() || r.origin != cfg.origin) return false;
    auto spec = nlohmann::json::parse(r.spec_json, nullptr, false);
    return spec.is_object() && !spec.value("adhoc", false);
}

// What differs between a running server and its model now: "command", "env", "cwd", "health",
// "host", "port"; empty when nothing that changes the server does.
std::vector<std::string> changes(const ServerRow& r, const ModelConfig& m) {
    if (r.config_hash == config_hash(m)) return {};
    auto running = model_from_spec(Defaults{}, r.name, r.spec_json);
    if (!running) return {"settings"}; // a row without its spec: the hash alone says so
    std::vector<std::string> what;
    if (running->command != m.command) what.push_back("command");
    if (running->env != m.env) what.push_back("env");
    if (running->cwd != m.cwd) what.push_back("cwd");
    if (running->health != m.health) what.push_back("health");
    if (r.host != m.host) what.push_back("host");
    if (m.port && r.port != *m.port) what.push_back("port");
    // A fixed port dropped: it keeps its port until restarted, which nothing forces (the hash of
    // a row of an earlier llmctl differs in the same way without any change).
    return what;
}

void add_step(ApplyPlan& plan, ApplyStep::Kind kind, const std::string& name, const std::string& why, const std::string& instance = "") {
    ApplyStep s;
    s.kind = kind;
    s.name = name;
    s.why = why;
    s.instance = instance;
    plan.steps.push_back(std::move(s));
}

} // namespace

const char* apply_verb(ApplyStep::Kind k) {
    switch (k) {
    case restart: return "restart";
    case stop: return "stop";
    case release: return "release";
    case start: return "start";
    }
    return "?";
}

ApplyPlan plan_apply(const std::string& state_dir, const Config& cfg) {
    ApplyPlan plan;
    std::vector<ServerRow> rows;
    std::vector<Hold> holds;
    if (auto store = Store::open_read(state_db_path(state_dir))) {
        Transaction snap(*store, Transaction::Kind::deferred);
        rows = load_servers(*store);
        holds = load_holds(*store);
    }
    for (const auto& r : rows) {
        if (!from_this_config(r, cfg)) {
            ++plan.foreign;
            continue;
        }
        const ModelConfig* m = cfg.find(r.name);
        if (!m) {
            add_step(plan, stop, r.name, fmt::format("not in {} any more", cfg.source), r.instance);
        } else if (m->external()) {
            add_step(plan, stop, r.name, fmt::format("now an external model ({})", m->url), r.instance);
        } else if (r.status == "stopping") {
            ++plan.unchanged; // on its way out already
        } else if (auto what = changes(r, *m); !what.empty()) {
            add_step(plan, restart, r.name, fmt::format("{} changed", fmt::join(what, ", ")), r.instance);
        } else {
            ++plan.unchanged;
        }
    }
    for (const auto& h : holds) { // (another config file's holds are its own)
        if (h.origin != cfg.origin) continue;
        const ModelConfig* m = cfg.find(h.name);
        add_step(plan, release, h.name,
                 m && !m->external() ? std::string("held down by a stop") : fmt::format("held down, and not in {} any more", cfg.source));
    }
    for (const auto& entry : cfg.models) { // (clang 14 cannot capture a structured binding)
        const std::string& name = entry.first;
        const ModelConfig& m = entry.second;
        bool has_row =
            std::any_of(rows.begin(), rows.end(), [&](const ServerRow& r) { return r.name == name && effective_status(r) != "dead"; });
        if (m.preload && !m.external() && !has_row) add_step(plan, start, name, "preload = true");
    }
    return plan;
}

void run_apply(const std::string& state_dir, const Config& cfg, ApplyPlan& plan, const std::function<void(const ApplyStep&)>& done,
               const std::function<void(const std::string&)>& progress) {
    // Holds first: a preload start below must not be called off by one.
    for (auto& s : plan.steps) {
        if (s.kind != release) continue;
        try {
            auto locked = open_locked(state_dir);
            Transaction tx(locked.store);
            if (release_hold(locked.store, s.name)) locked.store.add_event(s.name, "released", "apply lets the hold go");
            tx.commit();
            s.ok = true;
            s.result = "no longer held down";
        } catch (const Error& e) {
            s.result = e.what();
        }
        done(s);
    }
    for (auto& s : plan.steps) {
        if (s.kind != stop && s.kind != restart) continue;
        ModelConfig m = cfg.find(s.name) && !cfg.find(s.name)->external() ? *cfg.find(s.name) : model_from_defaults(cfg.defaults, s.name);
        // Only the server the plan saw, still one of this config's: a row replaced meanwhile (an
        // ad-hoc server of that name, another config's, a user's stop) is left alone.
        const StillWanted same = [&](Store&, const ServerRow& now) { return now.instance == s.instance && from_this_config(now, cfg); };
        try {
            StopResult r = stop_server(state_dir, s.name, m.stop_timeout, m.drain_timeout, progress, "stopped",
                                       s.kind == stop ? "by apply: not in the config" : "by apply: config changed", same);
            if (!r.stopped) {
                s.ok = true;
                s.result = "stopped or replaced meanwhile: left alone";
            } else if (s.kind == stop) {
                s.ok = true;
                s.result = "stopped";
            } else {
                StartOptions so;
                so.config = &cfg;
                so.progress = progress;
                s.result = start_server(state_dir, m, so).url;
                s.ok = true;
            }
        } catch (const Error& e) {
            s.result = e.what();
        }
        done(s);
    }
    std::vector<WarmStart> warm;
    if (std::any_of(plan.steps.begin(), plan.steps.end(), [](const ApplyStep& s) { return s.kind == start; }))
        warm = start_preloads(state_dir, cfg, WarmOptions{});
    for (auto& s : plan.steps) {
        if (s.kind != start) continue;
        auto w = std::find_if(warm.begin(), warm.end(), [&](const WarmStart& x) { return x.name == s.name; });
        if (w == warm.end()) {
            s.ok = true;
            s.result = "started meanwhile";
        } else {
            s.ok = w->outcome == WarmStart::Outcome::started || w->outcome == WarmStart::Outcome::running;
            s.result = w->why;
        }
        done(s);
    }
}

} // namespace llmctl
