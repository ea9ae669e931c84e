#include "llmctl/errors.hpp"
#include "llmctl/sse.hpp"

#include <gtest/gtest.h>
#include <vector>

using namespace llmctl;

namespace {

// Feeds `stream` split at `at` (and, separately, byte by byte); returns the events seen.
std::vector<std::string> events_split(const std::string& stream, std::size_t at) {
    std::vector<std::string> out;
    SseParser p([&](const std::string& d) { out.push_back(d); });
    p.feed(std::string_view(stream).substr(0, at));
    p.feed(std::string_view(stream).substr(at));
    p.finish();
    return out;
}

std::vector<std::string> events_bytewise(const std::string& stream) {
    std::vector<std::string> out;
    SseParser p([&](const std::string& d) { out.push_back(d); });
    for (char c : stream) p.feed(std::string_view(&c, 1));
    p.finish();
    return out;
}

// A llama.cpp-style stream (no space after "data:", CRLF is not used) and an OpenAI-style one
// (CRLF, comments, a usage-only final chunk, a multi-line event).
const std::string k_llama = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n"
                            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
                            "data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\u00e9\"}}]}\n\n"
                            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
                            "data: [DONE]\n\n";
const std::string k_openai = ": keep-alive\r\n\r\n"
                             "event: message\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\n"
                             "data: {\"choices\":[{\"delta\":\r\ndata: {\"content\":\"b\"}}]}\r\n\r\n"
                             "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\r\n\r\n"
                             "data: [DONE]\r\n\r\n";

} // namespace

TEST(Sse, LlamaStreamAtEveryBoundary) {
    auto whole = events_split(k_llama, k_llama.size());
    ASSERT_EQ(whole.size(), 5u);
    EXPECT_EQ(whole.back(), "[DONE]");
    std::string text;
    for (std::size_t i = 0; i + 1 < whole.size(); ++i) text += parse_chat_chunk(whole[i]).content;
    EXPECT_EQ(text, "Hello \xc3\xa9");
    EXPECT_EQ(parse_chat_chunk(whole[3]).finish_reason, "stop");
    for (std::size_t at = 0; at <= k_llama.size(); ++at) EXPECT_EQ(events_split(k_llama, at), whole) << "split at " << at;
    EXPECT_EQ(events_bytewise(k_llama), whole);
}

TEST(Sse, OpenAiStreamAtEveryBoundary) {
    auto whole = events_split(k_openai, k_openai.size());
    ASSERT_EQ(whole.size(), 4u);
    EXPECT_EQ(parse_chat_chunk(whole[0]).content, "a");
    EXPECT_EQ(whole[1], "{\"choices\":[{\"delta\":\n{\"content\":\"b\"}}]}"); // two data lines
    EXPECT_EQ(parse_chat_chunk(whole[1]).content, "b");
    auto usage = parse_chat_chunk(whole[2]);
    EXPECT_TRUE(usage.has_usage);
    EXPECT_EQ(usage.completion_tokens, 2);
    EXPECT_EQ(usage.content, "");
    for (std::size_t at = 0; at <= k_openai.size(); ++at) EXPECT_EQ(events_split(k_openai, at), whole) << "split at " << at;
    EXPECT_EQ(events_bytewise(k_openai), whole);
}

TEST(Sse, LoneCrLineEndsAndUnterminatedLastEvent) {
    std::vector<std::string> out;
    SseParser p([&](const std::string& d) { out.push_back(d); });
    p.feed("data: x\r\rdata: y");
    p.finish();
    EXPECT_EQ(out, (std::vector<std::string>{"x", "y"}));
}

TEST(Sse, ErrorsInsideTheStreamAndInBodies) {
    EXPECT_EQ(parse_chat_chunk("{\"error\":{\"message\":\"context too long\",\"code\":400}}").error, "context too long");
    EXPECT_EQ(error_message("{\"error\":\"model not found\"}"), "model not found");
    EXPECT_EQ(error_message("Bad Gateway\n"), "Bad Gateway");
    EXPECT_THROW(parse_chat_chunk("{not json"), Error);
}

// Hostile JSON from a server: clean results, never a json exception (fuzz_chat_json).
TEST(ChatChunk, OddUsageAndEmptyErrors) {
    auto d = llmctl::parse_chat_chunk(R"({"usage":{"prompt_tokens":"7","completion_tokens":-3}})");
    EXPECT_TRUE(d.has_usage);
    EXPECT_EQ(d.prompt_tokens, 0);
    EXPECT_EQ(d.completion_tokens, 0);
    EXPECT_EQ(llmctl::parse_chat_chunk(R"({"error":""})").error, R"({"error":""})");
    EXPECT_EQ(llmctl::parse_chat_chunk(R"({"error":{"message":""}})").error, R"({"error":{"message":""}})");
    EXPECT_EQ(llmctl::error_message(""), "(empty body)");
}
