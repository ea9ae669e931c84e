#include "chat.hpp"
#include "dialect.hpp"

namespace mock {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Message content is a string or, in the newer API, an array of {"type":"text","text":...} parts.
std::string content_text(const Json& content) {
    if (content.is_string()) return content.get<std::string>();
    std::string text;
    if (content.is_array()) {
        for (const auto& part : content) {
            if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string()) {
                text += part["text"].get<std::string>();
            }
        }
    }
    return text;
}

Json chunk(const CompletionMeta& meta, Json choices) {
    Json j;
    j["id"] = meta.id;
    j["object"] = "chat.completion.chunk";
    j["created"] = meta.created;
    j["model"] = meta.model;
    j["choices"] = std::move(choices);
    return j;
}

Json delta_choice(Json delta, Json finish_reason) {
    Json c;
    c["index"] = 0;
    c["delta"] = std::move(delta);
    c["finish_reason"] = std::move(finish_reason);
    return Json::array({std::move(c)});
}

// messages: [{"role":...,"content":...}, ...]; the reply echoes the last user message.
std::optional<ChatRequest> parse_chat_request(std::string_view body, std::string& error) {
    auto j = parse_object(body, error);
    if (!j) return std::nullopt;
    auto messages = j->find("messages");
    if (messages == j->end() || !messages->is_array() || messages->empty()) {
        error = "'messages' must be a non-empty array";
        return std::nullopt;
    }
    ChatRequest request;
    for (const auto& message : *messages) {
        if (!message.is_object()) {
            error = "each message must be an object";
            return std::nullopt;
        }
        std::string text = content_text(message.value("content", Json()));
        request.prompt_tokens += tokenize(text).size();
        if (message.value("role", "") == "user") {
            request.user_history += (request.user_history.empty() ? "" : " | ") + text;
            request.last_user_message = std::move(text);
        }
    }
    if (!parse_generation_fields(*j, request, error)) return std::nullopt;
    return request;
}

// The whole non-streaming "chat.completion" object.
std::string completion_json(const CompletionMeta& meta, const ChatReply& reply, std::uint64_t prompt_tokens) {
    std::string content;
    for (const auto& token : reply.tokens) content += token;
    Json message;
    message["role"] = "assistant";
    message["content"] = std::move(content);
    Json choice;
    choice["index"] = 0;
    choice["message"] = std::move(message);
    choice["finish_reason"] = reply.finish_reason;
    Json j;
    j["id"] = meta.id;
    j["object"] = "chat.completion";
    j["created"] = meta.created;
    j["model"] = meta.model;
    j["choices"] = Json::array({std::move(choice)});
    j["usage"] = usage_json(prompt_tokens, reply.tokens.size());
    return dump(j);
}

// Opens the stream: the assistant role with empty content.
std::string role_event(const CompletionMeta& meta) {
    Json delta;
    delta["role"] = "assistant";
    delta["content"] = "";
    return sse(chunk(meta, delta_choice(std::move(delta), nullptr)));
}

std::string content_event(const CompletionMeta& meta, std::string_view token) {
    Json delta;
    delta["content"] = token;
    return sse(chunk(meta, delta_choice(std::move(delta), nullptr)));
}

// An empty delta with the finish_reason.
std::string finish_event(const CompletionMeta& meta, std::string_view finish_reason) {
    return sse(chunk(meta, delta_choice(Json::object(), finish_reason)));
}

// No choices, only the usage totals.
std::string usage_event(const CompletionMeta& meta, std::uint64_t prompt_tokens, std::uint64_t completion_tokens) {
    Json j = chunk(meta, Json::array());
    j["usage"] = usage_json(prompt_tokens, completion_tokens);
    return sse(j);
}

} // namespace

std::vector<std::string> tokenize(std::string_view text) {
    std::vector<std::string> tokens;
    std::size_t start = 0;
    for (std::size_t i = 1; i < text.size(); ++i) {
        // Leading whitespace stays with the first word so nothing is lost.
        if (is_space(text[i - 1]) && !is_space(text[i])) {
            tokens.emplace_back(text.substr(start, i - start));
            start = i;
        }
    }
    if (start < text.size()) tokens.emplace_back(text.substr(start));
    return tokens;
}

bool parse_generation_fields(const Json& body, ChatRequest& request, std::string& error) {
    if (auto stream = body.find("stream"); stream != body.end() && !stream->is_null()) {
        if (!stream->is_boolean()) {
            error = "'stream' must be a boolean";
            return false;
        }
        request.stream = stream->get<bool>();
    }
    if (auto model = body.find("model"); model != body.end() && model->is_string()) {
        request.model = model->get<std::string>();
    }
    request.max_tokens = token_limit(body, "max_tokens", error);
    if (!request.max_tokens) request.max_tokens = token_limit(body, "max_completion_tokens", error);
    return error.empty();
}

ChatReply make_reply(const ChatRequest& request, const Options& options) {
    ChatReply reply;
    const std::uint64_t limit = request.max_tokens.value_or(UINT64_MAX);
    if (options.reply_tokens) {
        // Generated lazily up to the limit so a huge --reply-tokens with a small max_tokens stays cheap.
        const std::uint64_t n = std::min(*options.reply_tokens, limit);
        reply.tokens.reserve(n);
        for (std::uint64_t i = 0; i < n; ++i) {
            reply.tokens.push_back("tok" + std::to_string(i) + (i + 1 < *options.reply_tokens ? " " : ""));
        }
        reply.finish_reason = n < *options.reply_tokens ? "length" : "stop";
        return reply;
    }
    reply.tokens = tokenize(options.reply ? *options.reply : options.echo_history ? request.user_history : request.last_user_message);
    reply.finish_reason = "stop";
    if (reply.tokens.size() > limit) {
        reply.tokens.resize(limit);
        reply.finish_reason = "length";
    }
    return reply;
}

std::string invalid_request_json(std::string_view message) {
    Json error;
    error["message"] = message;
    error["type"] = "invalid_request_error";
    error["code"] = nullptr;
    return dump(Json{{"error", std::move(error)}});
}

std::string server_error_json(std::string_view message) {
    Json error;
    error["message"] = message;
    error["type"] = "server_error";
    return dump(Json{{"error", std::move(error)}});
}

std::string loading_json() { return R"({"error":{"code":503,"message":"Loading model"}})"; }

std::string not_found_json() { return R"({"error":{"code":404,"message":"File Not Found","type":"not_found_error"}})"; }

std::string models_json(std::string_view model_name) {
    Json model;
    model["id"] = model_name;
    model["object"] = "model";
    model["owned_by"] = "llmctl-mock";
    Json j;
    j["object"] = "list";
    j["data"] = Json::array({std::move(model)});
    return dump(j);
}

const Dialect chat_dialect{"chatcmpl-mock-", parse_chat_request, completion_json, role_event, content_event, finish_event, usage_event};

} // namespace mock
