#include "dialect.hpp"

namespace mock {
namespace {

// prompt: a string or an array of strings; the mock answers the last one, as a chat its last user message.
std::optional<ChatRequest> parse_text_completion_request(std::string_view body, std::string& error) {
    auto j = parse_object(body, error);
    if (!j) return std::nullopt;
    auto prompts = string_or_strings(j->value("prompt", Json()));
    if (!prompts) {
        error = "'prompt' must be a string or a non-empty array of strings";
        return std::nullopt;
    }
    ChatRequest request;
    for (auto& prompt : *prompts) {
        request.prompt_tokens += tokenize(prompt).size();
        request.user_history += (request.user_history.empty() ? "" : " | ") + prompt;
        request.last_user_message = std::move(prompt);
    }
    if (!parse_generation_fields(*j, request, error)) return std::nullopt;
    return request;
}

Json text_choice(std::string_view text, Json finish_reason) {
    Json c;
    c["index"] = 0;
    c["text"] = text;
    c["finish_reason"] = std::move(finish_reason);
    return c;
}

// Every "text_completion" object, whole or streamed, has this shape.
Json completion_object(const CompletionMeta& meta, Json choice) {
    Json j;
    j["id"] = meta.id;
    j["object"] = "text_completion";
    j["created"] = meta.created;
    j["model"] = meta.model;
    j["choices"] = Json::array({std::move(choice)});
    return j;
}

std::string whole_json(const CompletionMeta& meta, const ChatReply& reply, std::uint64_t prompt_tokens) {
    std::string text;
    for (const auto& token : reply.tokens) text += token;
    Json choice = text_choice(text, reply.finish_reason);
    choice["logprobs"] = nullptr;
    Json j = completion_object(meta, std::move(choice));
    j["usage"] = usage_json(prompt_tokens, reply.tokens.size());
    return dump(j);
}

std::string text_event(const CompletionMeta& meta, std::string_view token) {
    return sse(completion_object(meta, text_choice(token, nullptr)));
}

// The last chunk: empty text and the finish_reason.
std::string stop_event(const CompletionMeta& meta, std::string_view finish_reason) {
    return sse(completion_object(meta, text_choice("", finish_reason)));
}

} // namespace

const Dialect text_completion_dialect{"cmpl-mock-", parse_text_completion_request, whole_json, nullptr, text_event, stop_event, nullptr};

} // namespace mock
