#include "llmctl/strings.hpp"

#include <algorithm>

namespace llmctl {

std::size_t edit_distance(std::string_view a, std::string_view b) {
    // Optimal string alignment: a swap of two neighbours ("prot" for "port") costs 1.
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j) {
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates) {
    std::optional<std::string> best;
    std::size_t best_d = 0;
    // A third of the word's length (at least 1, at most 3) still reads as a typo.
    std::size_t limit = std::clamp<std::size_t>(word.size() / 3, 1, 3);
    for (const auto& c : candidates) {
        std::size_t d = edit_distance(word, c);
        bool prefix = word.size() >= 2 && c.rfind(word, 0) == 0;
        if ((d <= limit || prefix) && (!best || d < best_d)) {
            best = c;
            best_d = d;
        }
    }
    return best;
}

std::string did_you_mean_suffix(std::string_view word, const std::vector<std::string>& candidates) {
    auto m = closest_match(word, candidates);
    return m ? " (did you mean \"" + *m + "\"?)" : std::string();
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
    if (from.empty()) return s;
    std::size_t pos = 0;
    while ((pos = s.find(from, pos)) != std::string::npos) {
        s.replace(pos, from.size(), to);
        pos += to.size();
    }
    return s;
}

std::string last_lines(const std::string& text, std::size_t n) {
    std::size_t pos = text.size();
    if (pos && text[pos - 1] == '\n') --pos;
    for (std::size_t i = 0; i < n && pos != std::string::npos && pos > 0; ++i) pos = text.rfind('\n', pos - 1);
    return pos == std::string::npos ? text : text.substr(pos == 0 ? 0 : pos + 1);
}

} // namespace llmctl
