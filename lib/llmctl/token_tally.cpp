#include "llmctl/token_tally.hpp"

#include <nlohmann/json.hpp>

namespace llmctl {

namespace {

constexpr std::size_t k_tail_kept = 4096;

// The JSON object that follows the last "usage": key in `text` ("" when there is none whole).
std::string usage_object(const std::string& text) {
    const std::size_t key = text.rfind("\"usage\"");
    if (key == std::string::npos) return "";
    const std::size_t open = text.find('{', key);
    if (open == std::string::npos) return "";
    int depth = 0;
    bool in_string = false, escaped = false;
    for (std::size_t i = open; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{') {
            ++depth;
        } else if (c == '}' && --depth == 0) {
            return "{\"usage\":" + text.substr(open, i - open + 1) + "}";
        }
    }
    return "";
}

// A chunk carries text: a "content" or "text" (completions) string that is not empty. (A role
// chunk's "content":"" and a last chunk's empty delta do not count.)
bool carries_text(std::string_view data) {
    for (std::string_view key : {std::string_view(R"("content":")"), std::string_view(R"("text":")")}) {
        for (std::size_t at = data.find(key); at != std::string_view::npos; at = data.find(key, at + 1)) {
            std::size_t next = at + key.size();
            if (next < data.size() && data[next] != '"') return true;
        }
    }
    return false;
}

std::optional<std::int64_t> count_of(const nlohmann::json& usage, const char* key) {
    auto it = usage.find(key);
    if (it == usage.end() || !it->is_number_integer()) return std::nullopt;
    auto v = it->get<std::int64_t>();
    return v < 0 ? std::nullopt : std::optional<std::int64_t>(v);
}

} // namespace

TokenTally::TokenTally(bool stream) : stream_(stream), sse_([this](const std::string& data) { event(data); }) {}

bool TokenTally::feed(std::string_view piece) {
    const std::int64_t before = chunks_;
    if (stream_) {
        sse_.feed(piece);
    } else {
        tail_.append(piece);
        if (tail_.size() > 2 * k_tail_kept) tail_.erase(0, tail_.size() - k_tail_kept);
    }
    const bool first = !first_seen_ && (stream_ ? chunks_ > before : !piece.empty());
    if (first) first_seen_ = true;
    return first;
}

void TokenTally::finish() {
    if (stream_) {
        sse_.finish();
        return;
    }
    if (const std::string usage = usage_object(tail_); !usage.empty()) read_usage(usage);
    tail_.clear();
}

void TokenTally::event(const std::string& data) {
    if (data.find("\"usage\"") != std::string::npos) read_usage(data);
    if (carries_text(data)) ++chunks_;
}

void TokenTally::read_usage(const std::string& json) {
    auto j = nlohmann::json::parse(json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return;
    auto u = j.find("usage");
    if (u == j.end() || !u->is_object()) return;
    if (auto in = count_of(*u, "prompt_tokens")) tokens_in_ = in;
    if (auto out = count_of(*u, "completion_tokens")) usage_out_ = out;
}

} // namespace llmctl
