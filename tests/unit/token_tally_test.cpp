#include "llmctl/token_tally.hpp"

#include <gtest/gtest.h>

using namespace llmctl;

namespace {

const char* const k_role = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
std::string content(const std::string& t) { return "data: {\"choices\":[{\"delta\":{\"content\":\"" + t + "\"}}]}\n\n"; }
const char* const k_finish = "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
const char* const k_usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n";

TEST(TokenTally, StreamWithUsageTakesTheServersCounts) {
    TokenTally t(true);
    EXPECT_FALSE(t.feed(k_role)); // a role chunk is no token
    EXPECT_TRUE(t.feed(content("a")));
    EXPECT_FALSE(t.feed(content("b")));
    t.feed(content("c") + k_finish + k_usage + "data: [DONE]\n\n");
    t.finish();
    EXPECT_EQ(t.tokens_in(), 7);
    EXPECT_EQ(t.tokens_out(), 3);
    EXPECT_FALSE(t.counted());
}

TEST(TokenTally, StreamWithoutUsageCountsTheChunksThatCarryText) {
    TokenTally t(true);
    std::string all = std::string(k_role) + content("x") + content("y") + content("z") + content("w") + k_finish + "data: [DONE]\n\n";
    for (char c : all) t.feed(std::string_view(&c, 1)); // any split
    t.finish();
    EXPECT_FALSE(t.tokens_in());
    EXPECT_EQ(t.tokens_out(), 4);
    EXPECT_TRUE(t.counted());
}

TEST(TokenTally, CompletionsStreamsCountTheirText) {
    TokenTally t(true);
    t.feed("data: {\"choices\":[{\"text\":\" hi\"}]}\n\ndata: {\"choices\":[{\"text\":\"\"}]}\n\n");
    t.finish();
    EXPECT_EQ(t.tokens_out(), 1);
}

TEST(TokenTally, WholeBodyReadsItsUsageAtTheEnd) {
    TokenTally t(false);
    std::string body = R"({"choices":[{"message":{"content":"a b"}}],"usage":{"prompt_tokens":5,"completion_tokens":2}})";
    EXPECT_TRUE(t.feed(body.substr(0, 10)));
    EXPECT_FALSE(t.feed(body.substr(10)));
    t.finish();
    EXPECT_EQ(t.tokens_in(), 5);
    EXPECT_EQ(t.tokens_out(), 2);
}

TEST(TokenTally, BadOrNegativeUsageIsIgnored) {
    TokenTally t(false);
    t.feed(R"({"usage":{"prompt_tokens":-1,"completion_tokens":"many"}})");
    t.finish();
    EXPECT_FALSE(t.tokens_in());
    EXPECT_EQ(t.tokens_out(), 0);
    TokenTally s(true);
    s.feed("data: {\"usage\": not json\n\n");
    s.finish();
    EXPECT_EQ(s.tokens_out(), 0);
}

TEST(TokenTally, AWholeBodyOfMegabytesIsReadByItsTail) {
    TokenTally t(false);
    t.feed(R"({"object":"list","data":[{"embedding":[)");
    for (int i = 0; i < 200'000; ++i) t.feed("0.125,");
    t.feed(R"(1]}],"model":"m","usage":{"prompt_tokens":9,"total_tokens":9},"timings":{"x":"}{"}})");
    t.finish();
    EXPECT_EQ(t.tokens_in(), 9);
    EXPECT_EQ(t.tokens_out(), 0);
}

TEST(TokenTally, AUsageKeyInsideAStringIsNotTheUsage) {
    TokenTally t(false);
    t.feed(
        R"({"choices":[{"message":{"content":"the \"usage\": {\"prompt_tokens\": 99}"}}],"usage":{"prompt_tokens":3,"completion_tokens":4}})");
    t.finish();
    EXPECT_EQ(t.tokens_in(), 3);
    EXPECT_EQ(t.tokens_out(), 4);
}

} // namespace
