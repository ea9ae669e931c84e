#pragma once

#include "chat.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mock {

// How one OpenAI API spells a generation on the wire. completions.cpp serves every dialect the
// same way (echo or --reply, pacing, stream faults, request log); only the JSON differs.
struct Dialect {
    std::string_view id_prefix = {}; // of the "id" field, before "<pid>-<n>"
    std::optional<ChatRequest> (*parse)(std::string_view body, std::string& error) = nullptr;
    // The whole non-streaming answer.
    std::string (*whole)(const CompletionMeta& meta, const ChatReply& reply, std::uint64_t prompt_tokens) = nullptr;
    // SSE event before the first token; nullptr sends none.
    std::string (*opening)(const CompletionMeta& meta) = nullptr;
    // SSE event carrying one token.
    std::string (*content)(const CompletionMeta& meta, std::string_view token) = nullptr;
    // SSE event with the finish_reason.
    std::string (*finish)(const CompletionMeta& meta, std::string_view finish_reason) = nullptr;
    // SSE event with the usage totals, after the finish; nullptr sends none.
    std::string (*usage)(const CompletionMeta& meta, std::uint64_t prompt_tokens, std::uint64_t completion_tokens) = nullptr;
};

// POST /v1/chat/completions: "chat.completion" objects, "chat.completion.chunk" deltas (chat.cpp).
extern const Dialect chat_dialect;

// POST /v1/completions, OpenAI's legacy API: "text_completion" objects with a "text" per choice, no
// role or usage events in a stream (text_completion.cpp).
extern const Dialect text_completion_dialect;

} // namespace mock
