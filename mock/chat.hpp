#pragma once

#include "json.hpp"
#include "options.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mock {

// Splits text into tokens of one word plus its trailing whitespace; concatenating them gives text back.
std::vector<std::string> tokenize(std::string_view text);

// A validated generation request (a chat, or a legacy completion whose prompt stands in for the
// user message), reduced to what the mock looks at.
struct ChatRequest {
    std::string last_user_message; // "" when no message has role "user"
    std::string user_history;      // every user message, joined by " | "
    std::string model;             // "" when the client sent none
    bool stream = false;
    std::optional<std::uint64_t> max_tokens; // nullopt = unlimited
    std::uint64_t prompt_tokens = 0;
};

// Reads the fields every generation request shares: stream, model, max_tokens (or max_completion_tokens);
// false with error set if one is malformed.
bool parse_generation_fields(const Json& body, ChatRequest& request, std::string& error);

// What the mock answers: tokens already cut to max_tokens, and the matching finish_reason.
struct ChatReply {
    std::vector<std::string> tokens;
    std::string finish_reason; // "stop" or "length"
};

// Decides the reply from --reply / --reply-tokens / echo and max_tokens.
ChatReply make_reply(const ChatRequest& request, const Options& options);

// Fields repeated in every object of one completion.
struct CompletionMeta {
    std::string id;
    std::string model;
    std::int64_t created = 0; // unix seconds
};

// The SSE event that ends every stream.
inline constexpr std::string_view done_event = "data: [DONE]\n\n";

// {"error":{"message":...,"type":"invalid_request_error","code":null}} as OpenAI sends for 400s.
std::string invalid_request_json(std::string_view message);

// {"error":{"message":...,"type":"server_error"}}, for a 500.
std::string server_error_json(std::string_view message);

// {"error":{"code":503,"message":"Loading model"}} as llama-server sends while loading.
std::string loading_json();

// {"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}.
std::string not_found_json();

// {"object":"list","data":[{"id":model,...}]}.
std::string models_json(std::string_view model_name);

} // namespace mock
