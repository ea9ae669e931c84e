#include "llmctl/units.hpp"

#include <cctype>
#include <cmath>
#include <fmt/format.h>
#include <limits>

namespace llmctl {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Reads a non-negative decimal (digits with an optional fraction) at `i`.
std::optional<double> read_number(std::string_view t, std::size_t& i) {
    std::size_t start = i;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
    if (i < t.size() && t[i] == '.') {
        ++i;
        while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
    }
    if (i == start || (i == start + 1 && t[start] == '.')) return std::nullopt;
    if (i - start > 18) return std::nullopt;
    return std::stod(std::string(t.substr(start, i - start)));
}

} // namespace

std::optional<Millis> parse_duration(std::string_view text) {
    std::string t = lower(text);
    if (t.empty()) return std::nullopt;
    std::size_t i = 0;
    double total_ms = 0;
    bool any = false;
    while (i < t.size()) {
        auto num = read_number(t, i);
        if (!num) return std::nullopt;
        std::size_t u = i;
        while (i < t.size() && std::isalpha(static_cast<unsigned char>(t[i]))) ++i;
        std::string unit = t.substr(u, i - u);
        double mult;
        if (unit == "ms")
            mult = 1;
        else if (unit == "s" || (unit.empty() && !any && i == t.size()))
            mult = 1000;
        else if (unit == "m")
            mult = 60'000;
        else if (unit == "h")
            mult = 3'600'000;
        else if (unit == "d")
            mult = 86'400'000;
        else
            return std::nullopt;
        total_ms += *num * mult;
        any = true;
    }
    if (total_ms > 1e15) return std::nullopt; // ~31,000 years: surely a typo
    return Millis(static_cast<std::int64_t>(total_ms + 0.5));
}

namespace {

// The power of 1000 or 1024 that a size unit's letter stands for: k 1, m 2, g 3, t 4; 0 otherwise.
int size_power(char c) {
    switch (c) {
    case 'k': return 1;
    case 'm': return 2;
    case 'g': return 3;
    case 't': return 4;
    default: return 0;
    }
}

} // namespace

bool size_unit_is_ambiguous(std::string_view text) {
    std::string t = lower(text);
    std::size_t i = 0;
    return read_number(t, i) && t.size() == i + 1 && size_power(t[i]) > 0;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    std::string t = lower(text);
    std::size_t i = 0;
    auto num = read_number(t, i);
    if (!num) return std::nullopt;
    std::string unit = t.substr(i);
    double mult;
    if (unit.empty() || unit == "b")
        mult = 1;
    else if (unit.size() == 3 && unit.substr(1) == "ib" && size_power(unit[0]))
        mult = std::pow(1024.0, size_power(unit[0]));
    else if (unit.size() == 2 && unit[1] == 'b' && size_power(unit[0]))
        mult = std::pow(1000.0, size_power(unit[0]));
    else
        return std::nullopt;
    double v = *num * mult;
    if (v > static_cast<double>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::uint64_t>(v + 0.5);
}

std::string format_age(std::optional<std::int64_t> since, std::int64_t now) {
    if (!since) return "-";
    const std::int64_t whole_seconds = ((now - *since) / 1000) * 1000;
    return whole_seconds <= 0 ? "0s" : format_duration(Millis(whole_seconds));
}

std::string format_duration(Millis d) {
    auto ms = d.count();
    if (ms == 0) return "0";
    if (ms < 0) return "-" + format_duration(Millis(-ms));
    if (ms < 1000) return fmt::format("{}ms", ms);
    // Exact, so that parse_duration(format_duration(d)) == d (config show round-trips):
    // "1.5s" when a tenth of a second is exact, else the milliseconds as their own group.
    if (ms < 60'000 && ms % 100 == 0 && ms % 1000 != 0) return fmt::format("{:.1f}s", ms / 1000.0);
    auto rest_ms = ms % 1000;
    auto s = ms / 1000;
    std::string out;
    if (s >= 86'400) {
        out += fmt::format("{}d", s / 86'400);
        s %= 86'400;
    }
    if (s >= 3600) {
        out += fmt::format("{}h", s / 3600);
        s %= 3600;
    }
    if (s >= 60) {
        out += fmt::format("{}m", s / 60);
        s %= 60;
    }
    if (s > 0 || (out.empty() && rest_ms == 0)) out += fmt::format("{}s", s);
    if (rest_ms) out += fmt::format("{}ms", rest_ms);
    return out;
}

std::string format_size(std::uint64_t bytes) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    if (u == 0) return fmt::format("{}B", bytes);
    if (v == static_cast<double>(static_cast<std::uint64_t>(v))) return fmt::format("{}{}", static_cast<std::uint64_t>(v), units[u]);
    return fmt::format("{:.1f}{}", v, units[u]);
}

} // namespace llmctl
