#include "llmctl/sse.hpp"

#include "llmctl/errors.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace llmctl {

void SseParser::feed(std::string_view chunk) {
    for (char c : chunk) {
        if (last_cr_) {
            last_cr_ = false;
            if (c == '\n') continue; // the LF of a CRLF split across chunks (or not)
        }
        if (c == '\r' || c == '\n') {
            last_cr_ = c == '\r';
            line(line_);
            line_.clear();
        } else {
            line_ += c;
        }
    }
}

void SseParser::finish() {
    if (!line_.empty()) line(line_);
    line_.clear();
    line(""); // dispatch what is pending
}

void SseParser::line(std::string_view l) {
    if (l.empty()) {
        if (has_data_) on_event_(data_);
        data_.clear();
        has_data_ = false;
        return;
    }
    if (l.front() == ':') return; // comment
    auto colon = l.find(':');
    std::string_view field = l.substr(0, colon), value;
    if (colon != std::string_view::npos) {
        value = l.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field != "data") return; // event, id, retry: not used by chat completions
    if (has_data_) data_ += '\n';
    data_.append(value);
    has_data_ = true;
}

int sse_event_ends(std::string_view piece, int enough) {
    int ends = 0;
    std::size_t i = piece.find('\n');
    while (i != std::string_view::npos && ends < enough) {
        const std::string_view rest = piece.substr(i + 1);
        const std::size_t blank = rest.starts_with('\n') ? 1 : rest.starts_with("\r\n") ? 2 : 0;
        if (blank > 0) ++ends;
        i = piece.find('\n', i + 1 + blank);
    }
    return ends;
}

ChatDelta parse_chat_chunk(const std::string& data) {
    ChatDelta d;
    auto j = nlohmann::json::parse(data, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw Error(Exit::server, fmt::format("the server sent a malformed stream chunk: {}", data.substr(0, 200)));
    if (j.contains("error")) {
        d.error = error_message(data);
        return d;
    }
    if (auto c = j.find("choices"); c != j.end() && c->is_array() && !c->empty()) {
        const auto& ch = (*c)[0];
        if (auto delta = ch.find("delta"); delta != ch.end() && delta->is_object()) {
            if (auto t = delta->find("content"); t != delta->end() && t->is_string()) d.content = t->get<std::string>();
        } else if (auto msg = ch.find("message"); msg != ch.end() && msg->is_object()) {
            if (auto t = msg->find("content"); t != msg->end() && t->is_string()) d.content = t->get<std::string>();
        }
        if (auto f = ch.find("finish_reason"); f != ch.end() && f->is_string()) d.finish_reason = f->get<std::string>();
    }
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
        d.has_usage = true;
        // Counts of another type, or negative, are ignored (json::value() would throw).
        auto count = [&](const char* key) -> long {
            auto it = u->find(key);
            if (it == u->end() || !it->is_number_integer()) return 0;
            auto v = it->get<std::int64_t>();
            return v < 0 ? 0 : static_cast<long>(v);
        };
        d.prompt_tokens = count("prompt_tokens");
        d.completion_tokens = count("completion_tokens");
    }
    return d;
}

std::string error_message(const std::string& body) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
        // An empty message is no message: the body below says more (found by fuzz_chat_json:
        // {"error":""} inside a stream was taken for a normal chunk).
        auto text = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : std::string(); };
        if (auto e = j.find("error"); e != j.end()) {
            if (auto t = text(*e); !t.empty()) return t;
            if (e->is_object())
                if (auto t = text(e->value("message", nlohmann::json())); !t.empty()) return t;
        }
        if (auto t = text(j.value("message", nlohmann::json())); !t.empty()) return t;
    }
    std::string s = body.substr(0, 300);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s.empty() ? "(empty body)" : s;
}

} // namespace llmctl
