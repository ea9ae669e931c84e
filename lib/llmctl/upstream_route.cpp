#include "llmctl/upstream_route.hpp"

#include <optional>

namespace llmctl {

namespace {

constexpr std::string_view k_prefix = "/upstream/";

std::optional<int> hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return std::nullopt;
}

// The segment percent-decoded; nothing for a malformed escape.
std::optional<std::string> percent_decoded(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        auto hi = i + 2 < s.size() ? hex_digit(s[i + 1]) : std::nullopt;
        auto lo = i + 2 < s.size() ? hex_digit(s[i + 2]) : std::nullopt;
        if (!hi || !lo) return std::nullopt;
        out += static_cast<char>(*hi * 16 + *lo);
        i += 2;
    }
    return out;
}

// A segment a server may take for a separator or a step up: "." or ".." (some servers drop a
// ";parameter" first), or one that hides a '/' or '\\', or a '%' (decoded twice by some).
bool segment_is_safe(std::string_view raw) {
    auto decoded = percent_decoded(raw);
    if (!decoded) return false;
    if (decoded->find_first_of("/\\%") != std::string::npos) return false;
    std::string_view bare = std::string_view(*decoded).substr(0, decoded->find(';'));
    return bare != "." && bare != "..";
}

} // namespace

bool is_upstream_target(std::string_view target) { return target.substr(0, k_prefix.size()) == k_prefix; }

bool path_stays_under_base(std::string_view path) {
    path = path.substr(0, path.find('?'));
    if (path.empty() || path[0] != '/') return false;
    std::size_t begin = 1;
    for (;;) {
        std::size_t end = path.find('/', begin);
        std::string_view segment = path.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin);
        if (end == std::string_view::npos) return segment.empty() || segment_is_safe(segment); // a trailing '/' is fine
        if (segment.empty() || !segment_is_safe(segment)) return false;
        begin = end + 1;
    }
}

UpstreamRoute parse_upstream_target(std::string_view target) {
    UpstreamRoute r;
    std::string_view rest = target.substr(k_prefix.size());
    std::size_t end_of_name = rest.find_first_of("/?");
    r.name = std::string(rest.substr(0, end_of_name));
    if (end_of_name == std::string_view::npos || rest[end_of_name] != '/') {
        r.problem = UpstreamProblem::no_path;
        return r;
    }
    std::string_view path = rest.substr(end_of_name);
    if (!path_stays_under_base(path)) {
        r.problem = UpstreamProblem::unsafe_path;
        return r;
    }
    r.path = std::string(path);
    return r;
}

} // namespace llmctl
