#include "llmctl/gateway_api.hpp"

#include "llmctl/dashboard_page.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/events_feed.hpp"
#include "llmctl/log_follow.hpp"
#include "llmctl/log_stream.hpp"
#include "llmctl/names.hpp"
#include "llmctl/openai_error.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/supervisor.hpp"
#include "llmctl/top_snapshot.hpp"

#include <charconv>
#include <fmt/format.h>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

namespace llmctl {

namespace {

using Headers = std::vector<ClientConnection::Header>;
using nlohmann::json;

constexpr std::string_view k_api = "/api/";

// The query's integer `key`, clamped to [lo, hi]; `fallback` when absent or not a number.
std::int64_t query_int(std::string_view query, std::string_view key, std::int64_t fallback, std::int64_t lo, std::int64_t hi) {
    for (std::size_t at = 0; at <= query.size();) {
        std::size_t end = query.find('&', at);
        if (end == std::string_view::npos) end = query.size();
        std::string_view pair = query.substr(at, end - at);
        if (pair.substr(0, key.size()) == key && pair.size() > key.size() && pair[key.size()] == '=') {
            std::string_view v = pair.substr(key.size() + 1);
            std::int64_t n = 0;
            auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec == std::errc() && p == v.data() + v.size()) return std::clamp(n, lo, hi);
            return fallback;
        }
        at = end + 1;
    }
    return fallback;
}

ApiOutcome send_json(ClientConnection& c, const Headers& headers, int status, const json& body) {
    Headers h = headers;
    h.push_back({"Content-Type", "application/json"});
    h.push_back({"Cache-Control", "no-store"});
    const std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
    c.respond(status, h, text);
    return {status, text.size(), ""};
}

ApiOutcome send_error(ClientConnection& c, const Headers& headers, const ApiError& e) {
    Headers h = headers;
    h.push_back({"Content-Type", "application/json"});
    if (e.retry_after) h.push_back({"Retry-After", std::to_string(*e.retry_after)});
    const std::string text = openai_error_body(e);
    c.respond(e.status, h, text);
    return {e.status, text.size(), e.message};
}

ApiError not_found(std::string message) { return {404, std::move(message), "invalid_request_error", "not_found", std::nullopt}; }

json or_null(const std::optional<std::int64_t>& v) { return v ? json(*v) : json(); }

json model_json(const TopServer* s, const ModelConfig* m, const std::string& name) {
    json j = {{"name", name}, {"kind", !m ? "adhoc" : m->external() ? "external" : "managed"}};
    j["status"] = s ? s->status : m && m->external() ? "external" : "stopped";
    j["pid"] = s && s->pid ? json(s->pid) : json();
    j["port"] = s ? or_null(s->port) : json();
    j["up_since"] = s ? or_null(s->up_since) : json();
    j["rss_bytes"] = s ? s->rss : 0;
    j["memory_bytes"] = s ? or_null(s->memory) : json();
    j["pool"] = s && !s->pool.empty() ? json(s->pool) : m && !m->pool.empty() ? json(m->pool) : json();
    j["active"] = s ? s->active : 0;
    j["queued"] = s ? s->queued : 0;
    j["max_concurrent"] = s && s->cap ? s->cap : m ? std::max(1, m->max_concurrent) : 0;
    j["tokens_per_s"] = s ? s->tokens_per_s : 0.0;
    j["last_exit"] = s && !s->last_exit.empty() ? json(s->last_exit) : json();
    j["restarts"] = s ? s->restarts : 0;
    return j;
}

json status_json(const std::string& state_dir, const Config& config) {
    const TopSnapshot snap = read_top(state_dir, &config, 0);
    std::map<std::string, const TopServer*> rows;
    for (const TopServer& s : snap.servers) rows[s.name] = &s;
    json models = json::array();
    for (const auto& [name, m] : config.models) {
        auto r = rows.find(name);
        models.push_back(model_json(r == rows.end() ? nullptr : r->second, &m, name));
    }
    for (const auto& [name, s] : rows)
        if (!config.find(name)) models.push_back(model_json(s, nullptr, name));
    json pools = json::array();
    for (const PoolReport& p : snap.pools)
        pools.push_back({{"name", p.name},
                         {"kind", p.kind},
                         {"budget_bytes", p.budget ? json(*p.budget) : json()},
                         {"used_bytes", p.used},
                         {"reserved_bytes", p.reserved},
                         {"queued", p.queued}});
    json gateways = json::array();
    for (const GatewayRow& g : snap.gateways)
        gateways.push_back(
            {{"url", g.url}, {"pid", g.owner.pid}, {"in_flight", g.in_flight}, {"served", g.served}, {"started_at", g.started_at}});
    return {{"time", snap.at}, {"models", models}, {"pools", pools}, {"gateways", gateways}};
}

// The newest `limit` events; with `after`, the first `limit` after that id (a poller that asks
// again from the last id it got misses none, however many came meanwhile).
json events_json(const std::string& state_dir, std::string_view query) {
    EventQuery q;
    q.after_id = query_int(query, "after", 0, 0, INT64_MAX);
    const auto limit = static_cast<std::size_t>(query_int(query, "limit", 50, 1, 1000));
    std::vector<EventRow> rows;
    if (q.after_id > 0) {
        rows = read_events(state_dir, q); // (the table keeps about 10,000)
        if (rows.size() > limit) rows.resize(limit);
    } else {
        q.last = static_cast<int>(limit);
        rows = read_events(state_dir, q);
    }
    json events = json::array();
    for (const EventRow& e : rows)
        events.push_back(
            {{"id", e.id}, {"at", e.at}, {"server", e.server.empty() ? json() : json(e.server)}, {"kind", e.kind}, {"detail", e.detail}});
    // The newest id in the file: below `after` when the state file was made anew (its ids begin
    // at 1 again), and the poller starts over.
    return {{"events", events}, {"newest", newest_event_id(state_dir)}};
}

// The log's last lines, then what the server writes, as it writes it: until the client goes, the
// gateway stops, or an hour passes (the page asks again).
ApiOutcome stream_log(ClientConnection& c, const Headers& headers, const std::string& state_dir, const std::string& name, std::size_t lines,
                      const std::atomic<bool>& stopping) {
    // Each follower holds a thread: a bound, so that a page left open in many tabs (or another
    // site's <img> on a gateway without a key) cannot take them all.
    constexpr int k_max_followers = 32;
    static std::atomic<int> followers{0};
    struct Count {
        std::atomic<int>& n;
        ~Count() { --n; }
    } counted{followers};
    if (++followers > k_max_followers)
        return send_error(c, headers,
                          {429, fmt::format("{} logs are followed already; close a dashboard tab", k_max_followers), "rate_limit_error",
                           "too_many_followers", 1});
    Headers h = headers;
    h.push_back({"Content-Type", "text/plain; charset=utf-8"});
    h.push_back({"Cache-Control", "no-store"});
    h.push_back({"X-Content-Type-Options", "nosniff"});
    ApiOutcome out{200, 0, ""};
    FollowedLog log(name, log_path(state_dir, name));
    try {
        c.begin_stream(200, h);
        if (auto tail = tail_log(log.path, lines)) {
            if (!tail->text.empty()) c.stream_piece(tail->text);
            out.bytes += tail->text.size();
            log.abs = tail->end;
            log.ino = tail->ino;
        }
        const auto until = std::chrono::steady_clock::now() + std::chrono::hours(1);
        while (!stopping && std::chrono::steady_clock::now() < until && !c.peer_gone()) {
            poll_log(log, 0, [&](const std::string&, std::string_view data, std::size_t) {
                if (data.empty()) return;
                c.stream_piece(data);
                out.bytes += data.size();
            });
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        c.end_stream();
    } catch (const ClientGone&) {
        out.error = "the client closed the connection";
    }
    return out;
}

// POST /api/models/NAME/ACTION: as `llmctl start|stop|restart NAME`, for a configured model.
ApiOutcome act(ClientConnection& c, const Headers& headers, const std::string& state_dir, const Config& config, const std::string& name,
               const std::string& action, const std::atomic<bool>& stopping) {
    const ModelConfig* m = config.find(name);
    if (!m) return send_error(c, headers, not_found(fmt::format("no configured model \"{}\"", name)));
    if (m->external())
        return send_error(c, headers,
                          {400, fmt::format("model \"{}\" is external ({}): llmctl does not {} it", name, m->url, action),
                           "invalid_request_error", "external_model", std::nullopt});
    try {
        if (action == "stop" || action == "restart")
            stop_server(state_dir, name, m->stop_timeout, m->drain_timeout, {}, "stopped", "by the dashboard", {},
                        action == "stop" ? m : nullptr);
    } catch (const Error& e) {
        return send_error(c, headers, api_error_from(e));
    }
    std::string url;
    if (action == "start" || action == "restart") {
        try {
            StartOptions so;
            so.config = &config;
            so.cancelled = [&stopping] { return stopping.load(); };
            url = start_server(state_dir, *m, so).url;
        } catch (const Error& e) {
            return send_error(c, headers, start_failure_error(e));
        }
    }
    return send_json(c, headers, 200, {{"name", name}, {"action", action}, {"url", url.empty() ? json() : json(url)}});
}

} // namespace

bool is_dashboard_page(std::string_view path) { return path == "/ui" || path == "/ui/"; }

bool is_api_target(std::string_view path) { return path.substr(0, k_api.size()) == k_api; }

ApiOutcome answer_dashboard(ClientConnection& c, const Headers& headers) {
    Headers h = headers;
    h.push_back({"Content-Type", "text/html; charset=utf-8"});
    h.push_back({"Cache-Control", "no-cache"});
    // The page runs only its own script and talks only to this gateway.
    h.push_back({"Content-Security-Policy",
                 "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
                 "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"});
    h.push_back({"X-Content-Type-Options", "nosniff"});
    const std::string page(dashboard_page());
    c.respond(200, h, page);
    return {200, page.size(), ""};
}

ApiOutcome answer_api(std::string_view method, std::string_view target, ClientConnection& c, const std::string& state_dir,
                      const Config& config, const std::atomic<bool>& stopping, const Headers& headers) {
    const std::size_t q = target.find('?');
    const std::string_view path = target.substr(0, q);
    const std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    const std::string_view rest = path.substr(k_api.size());
    const bool get = method == "GET", post = method == "POST";
    auto wrong_method = [&](const char* allowed) {
        return send_error(
            c, headers,
            {405, fmt::format("{} takes {}", std::string(path), allowed), "invalid_request_error", "method_not_allowed", std::nullopt});
    };
    if (rest == "status") return get ? send_json(c, headers, 200, status_json(state_dir, config)) : wrong_method("GET");
    if (rest == "events") return get ? send_json(c, headers, 200, events_json(state_dir, query)) : wrong_method("GET");
    if (rest.substr(0, 5) == "logs/") {
        const std::string name(rest.substr(5));
        if (!valid_model_name(name)) return send_error(c, headers, not_found(fmt::format("bad server name \"{}\"", name)));
        if (!get) return wrong_method("GET");
        return stream_log(c, headers, state_dir, name, static_cast<std::size_t>(query_int(query, "lines", 100, 0, 10'000)), stopping);
    }
    if (rest.substr(0, 7) == "models/") {
        const std::string_view tail = rest.substr(7);
        const std::size_t slash = tail.find('/');
        const std::string name(tail.substr(0, slash));
        const std::string action(slash == std::string_view::npos ? "" : tail.substr(slash + 1));
        if (action == "start" || action == "stop" || action == "restart") {
            if (!post) return wrong_method("POST");
            return act(c, headers, state_dir, config, name, action, stopping);
        }
    }
    return send_error(c, headers, not_found(fmt::format("no API route {} {}", std::string(method), std::string(path))));
}

} // namespace llmctl
