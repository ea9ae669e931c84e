#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mock {

// Keys keep their insertion order, so replies read like OpenAI's.
using Json = nlohmann::ordered_json;

// Compact JSON; invalid UTF-8 (possible in --reply) is replaced, since throwing mid-stream is worse.
std::string dump(const Json& j);

// One SSE event: "data: <json>\n\n".
std::string sse(const Json& j);

// Parses a request body that must be a JSON object; on failure returns nullopt with a client-facing error.
std::optional<Json> parse_object(std::string_view body, std::string& error);

// A token limit such as max_tokens: nullopt when absent, null or negative (llama.cpp's "no limit");
// error is set when it is not a number.
std::optional<std::uint64_t> token_limit(const Json& body, std::string_view key, std::string& error);

// A string, or a non-empty array of strings, as a list (the prompt of /v1/completions, the input of
// /v1/embeddings); nullopt for anything else.
std::optional<std::vector<std::string>> string_or_strings(const Json& value);

// {"prompt_tokens":p,"completion_tokens":c,"total_tokens":p+c}.
Json usage_json(std::uint64_t prompt_tokens, std::uint64_t completion_tokens);

} // namespace mock
