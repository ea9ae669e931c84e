#include "view.hpp"

#include "llmctl/clock_text.hpp"
#include "llmctl/units.hpp"

#include <algorithm>
#include <ctime>
#include <fmt/format.h>

namespace llmctl_top {

using llmctl::TopServer;
using llmctl::TopSnapshot;

const char* sort_name(SortKey k) {
    switch (k) {
    case SortKey::name: return "name";
    case SortKey::status: return "status";
    case SortKey::tokens: return "tokens/s";
    case SortKey::memory: return "memory";
    }
    return "name";
}

SortKey next_sort(SortKey k) {
    switch (k) {
    case SortKey::name: return SortKey::status;
    case SortKey::status: return SortKey::tokens;
    case SortKey::tokens: return SortKey::memory;
    case SortKey::memory: return SortKey::name;
    }
    return SortKey::name;
}

std::vector<TopServer> sorted_servers(std::vector<TopServer> servers, SortKey key) {
    auto memory = [](const TopServer& s) { return s.rss ? s.rss : static_cast<std::uint64_t>(s.memory.value_or(0)); };
    std::stable_sort(servers.begin(), servers.end(), [&](const TopServer& a, const TopServer& b) {
        switch (key) {
        case SortKey::name: break;
        case SortKey::status:
            if (a.status != b.status) return a.status < b.status;
            break;
        case SortKey::tokens:
            if (a.tokens_per_s != b.tokens_per_s) return a.tokens_per_s > b.tokens_per_s;
            break;
        case SortKey::memory:
            if (memory(a) != memory(b)) return memory(a) > memory(b);
            break;
        }
        return a.name < b.name;
    });
    return servers;
}

namespace {

// Columns padded to the widest cell, two spaces apart (the last one not padded).
std::vector<std::string> table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width;
    for (const auto& r : rows)
        for (std::size_t i = 0; i < r.size(); ++i) {
            if (width.size() <= i) width.push_back(0);
            width[i] = std::max(width[i], r[i].size());
        }
    std::vector<std::string> out;
    for (const auto& r : rows) {
        std::string line;
        for (std::size_t i = 0; i < r.size(); ++i) line += i + 1 < r.size() ? fmt::format("{:<{}}  ", r[i], width[i]) : r[i];
        out.push_back(std::move(line));
    }
    return out;
}

std::vector<std::string> server_cells(const TopServer& s, std::int64_t now) {
    std::string slots = fmt::format("{}/{}", s.active, s.cap ? std::to_string(s.cap) : "-");
    if (s.queued) slots += fmt::format(" +{}", s.queued);
    std::string mem = s.memory ? llmctl::format_size(static_cast<std::uint64_t>(*s.memory)) : "-";
    std::string last = s.last_exit.empty() ? "-" : s.last_exit;
    if (s.restarts) last += fmt::format(" ({} restarts)", s.restarts);
    return {s.name,
            s.status,
            s.pid ? std::to_string(s.pid) : "-",
            s.port ? std::to_string(*s.port) : "-",
            llmctl::format_age(s.up_since, now),
            s.rss ? llmctl::format_size(s.rss) : "-",
            mem,
            slots,
            fmt::format("{:.1f}", s.tokens_per_s),
            last};
}

Line line(Line::Kind kind, std::string text) {
    Line l;
    l.kind = kind;
    l.text = std::move(text);
    return l;
}

void add_section(std::vector<Line>& out, const std::string& title, const std::vector<std::vector<std::string>>& rows) {
    out.push_back(line(Line::Kind::blank, ""));
    out.push_back(line(Line::Kind::section, title));
    auto lines = table(rows);
    for (std::size_t i = 0; i < lines.size(); ++i) out.push_back(line(i == 0 ? Line::Kind::header : Line::Kind::text, lines[i]));
}

} // namespace

std::vector<Line> view_lines(const TopSnapshot& snap, const std::vector<TopServer>& servers, SortKey key, const std::string& state_dir) {
    std::vector<Line> out;
    out.push_back(line(Line::Kind::title,
                       fmt::format("llmctl top  {}  state {}  sort: {}",
                                   llmctl::clock_text(snap.at / 1000, llmctl::Zone::local, "%H:%M:%S"), state_dir, sort_name(key))));
    out.push_back(line(Line::Kind::blank, ""));
    out.push_back(line(Line::Kind::section, fmt::format("SERVERS ({})", servers.size())));
    std::vector<std::vector<std::string>> rows = {{"NAME", "STATUS", "PID", "PORT", "UPTIME", "RSS", "MEM", "SLOTS", "TOK/S", "LAST EXIT"}};
    for (const TopServer& s : servers) rows.push_back(server_cells(s, snap.at));
    auto lines = table(rows);
    out.push_back(line(Line::Kind::header, lines[0]));
    for (std::size_t i = 1; i < lines.size(); ++i) {
        Line l = line(Line::Kind::server, lines[i]);
        l.status = servers[i - 1].status;
        l.server = static_cast<int>(i - 1);
        out.push_back(std::move(l));
    }
    if (servers.empty())
        out.push_back(
            line(Line::Kind::text, snap.state_file ? "  (no servers: llmctl start NAME)" : "  (no state file yet: llmctl start NAME)"));

    if (!snap.pools.empty()) {
        std::vector<std::vector<std::string>> p = {{"POOL", "KIND", "BUDGET", "USED", "RESERVED", "QUEUED"}};
        for (const auto& pool : snap.pools)
            p.push_back({pool.name, pool.kind, pool.budget ? llmctl::format_size(*pool.budget) : "-", llmctl::format_size(pool.used),
                         llmctl::format_size(pool.reserved), std::to_string(pool.queued)});
        add_section(out, "POOLS", p);
    }
    if (!snap.gateways.empty()) {
        std::vector<std::vector<std::string>> g = {{"GATEWAY", "PID", "IN FLIGHT", "SERVED", "UPTIME"}};
        for (const auto& gw : snap.gateways)
            g.push_back({gw.url, std::to_string(gw.owner.pid), std::to_string(gw.in_flight), std::to_string(gw.served),
                         llmctl::format_age(gw.started_at, snap.at)});
        add_section(out, "GATEWAYS", g);
    }
    std::vector<std::vector<std::string>> e = {{"TIME", "SERVER", "EVENT", "DETAIL"}};
    for (const auto& ev : snap.events)
        e.push_back(
            {llmctl::clock_text(ev.at / 1000, llmctl::Zone::local, "%H:%M:%S"), ev.server.empty() ? "-" : ev.server, ev.kind, ev.detail});
    add_section(out, "EVENTS", e);
    if (snap.events.empty()) out.push_back(line(Line::Kind::text, "  (none yet)"));
    return out;
}

} // namespace llmctl_top
