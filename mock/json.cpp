#include "json.hpp"

namespace mock {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string sse(const Json& j) { return "data: " + dump(j) + "\n\n"; }

std::optional<Json> parse_object(std::string_view body, std::string& error) {
    Json j;
    try {
        j = Json::parse(body);
    } catch (const Json::parse_error& e) {
        error = std::string("invalid JSON in request body: ") + e.what();
        return std::nullopt;
    }
    if (!j.is_object()) {
        error = "request body must be a JSON object";
        return std::nullopt;
    }
    return j;
}

std::optional<std::uint64_t> token_limit(const Json& body, std::string_view key, std::string& error) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (!it->is_number()) {
        error = "'" + std::string(key) + "' must be an integer";
        return std::nullopt;
    }
    // llama.cpp treats negative limits as "no limit"; so do we.
    double value = it->get<double>();
    if (value < 0) return std::nullopt;
    return static_cast<std::uint64_t>(value);
}

std::optional<std::vector<std::string>> string_or_strings(const Json& value) {
    if (value.is_string()) return std::vector<std::string>{value.get<std::string>()};
    if (!value.is_array() || value.empty()) return std::nullopt;
    std::vector<std::string> strings;
    for (const auto& item : value) {
        if (!item.is_string()) return std::nullopt;
        strings.push_back(item.get<std::string>());
    }
    return strings;
}

Json usage_json(std::uint64_t prompt_tokens, std::uint64_t completion_tokens) {
    Json u;
    u["prompt_tokens"] = prompt_tokens;
    u["completion_tokens"] = completion_tokens;
    u["total_tokens"] = prompt_tokens + completion_tokens;
    return u;
}

} // namespace mock
