#include "llmctl/keep_warm.hpp"

#include "llmctl/admission.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/holds.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"
#include "llmctl/supervisor.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace llmctl {

namespace {

bool is_preload(const ModelConfig& m) { return m.preload && !m.external(); }

// Why a preload model is left as it is, or "" when it is to be started.
std::string reason_to_wait(const std::string& state_dir, const ModelConfig& m, const Config& cfg, const std::vector<Hold>& holds) {
    if (std::any_of(holds.begin(), holds.end(), [&](const Hold& h) { return h.name == m.name; }))
        return fmt::format("held down by a stop (llmctl start {} lets it go)", m.name);
    AdmissionPreview p = preview_admission(state_dir, m, cfg);
    if (p.pool && p.plan.kind != AdmissionPlan::Kind::fits)
        return fmt::format("pool {} has no room for it without evicting ({} of {} used{})", p.pool->name, format_memory(p.used),
                           format_memory(p.budget), p.plan.holders.empty() ? "" : ": " + p.plan.holders);
    return {};
}

} // namespace

std::vector<WarmStart> start_preloads(const std::string& state_dir, const Config& cfg, const WarmOptions& opts) {
    std::vector<WarmStart> out;
    // Most configs preload nothing: then a reap opens no reader for it.
    if (std::none_of(cfg.models.begin(), cfg.models.end(), [](const auto& e) { return is_preload(e.second); })) return out;
    std::vector<ServerRow> rows;
    std::vector<Hold> holds;
    if (auto store = Store::open_read(state_db_path(state_dir))) {
        rows = load_servers(*store);
        holds = load_holds(*store);
    }
    for (const auto& entry : cfg.models) { // (clang 14 cannot capture a structured binding)
        const std::string& name = entry.first;
        const ModelConfig& m = entry.second;
        if (!is_preload(m)) continue;
        // A live row (or a failed one: a crash loop given up stays down) leaves it alone; a start
        // clears a dead one.
        if (std::any_of(rows.begin(), rows.end(), [&](const ServerRow& r) { return r.name == name && effective_status(r) != "dead"; }))
            continue;
        using enum WarmStart::Outcome;
        WarmStart w;
        w.name = name;
        try {
            w.why = reason_to_wait(state_dir, m, cfg, holds);
            if (!w.why.empty()) {
                w.outcome = waits;
            } else if (opts.dry_run) {
                w.outcome = would_start;
                w.why = "preload = true and not running";
            } else {
                StartOptions so;
                so.config = &cfg;
                so.wait = opts.wait;
                so.keep_warm = true;
                so.cancelled = opts.cancelled;
                StartResult r = start_server(state_dir, m, so);
                w.outcome = r.already_running ? running : started;
                w.pid = r.pid;
                w.why = r.already_running ? "already running" : fmt::format("started on port {}", r.port);
            }
        } catch (const Error& e) {
            w.outcome = e.code() == Exit::interrupted ? waits : failed; // interrupted: held meanwhile, no room, or cancelled
            w.why = e.what();
        }
        out.push_back(std::move(w));
    }
    return out;
}

} // namespace llmctl
