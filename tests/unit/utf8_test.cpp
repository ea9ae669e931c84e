#include "llmctl/utf8.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <random>

using namespace llmctl;

namespace {
const std::string k_fffd = "\xEF\xBF\xBD";
}

TEST(Utf8, ValidTextHasNoInvalidByte) {
    EXPECT_EQ(first_invalid_utf8(""), std::nullopt);
    EXPECT_EQ(first_invalid_utf8("plain ascii\n\t\x1b"), std::nullopt);
    EXPECT_EQ(first_invalid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"), std::nullopt); // é € 😀 U+10FFFF
    EXPECT_EQ(replace_invalid_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
}

TEST(Utf8, FindsTheFirstBadByte) {
    EXPECT_EQ(first_invalid_utf8("caf\xE9 ok"), 3u);        // Latin-1 é
    EXPECT_EQ(first_invalid_utf8("ab\xC3"), 2u);            // cut off at the end
    EXPECT_EQ(first_invalid_utf8("\xC3\xA9\x80"), 2u);      // a stray continuation byte
    EXPECT_EQ(first_invalid_utf8("x\xC0\xAF"), 1u);         // overlong '/'
    EXPECT_EQ(first_invalid_utf8("x\xE0\x80\xAF"), 1u);     // overlong, 3 bytes
    EXPECT_EQ(first_invalid_utf8("x\xED\xA0\x80"), 1u);     // a surrogate (U+D800)
    EXPECT_EQ(first_invalid_utf8("x\xF4\x90\x80\x80"), 1u); // above U+10FFFF
    EXPECT_EQ(first_invalid_utf8("x\xF5\x80\x80\x80"), 1u);
    EXPECT_EQ(first_invalid_utf8("x\xFF"), 1u);
}

// Unicode's "maximal subpart" practice (the W3C encoding standard's decoder does the same).
TEST(Utf8, ReplacesEachMaximalSubpartOnce) {
    EXPECT_EQ(replace_invalid_utf8("caf\xE9!"), "caf" + k_fffd + "!");
    EXPECT_EQ(replace_invalid_utf8("\xE2\x82"
                                   "A"),
              k_fffd + "A");                                                   // a truncated € is one U+FFFD
    EXPECT_EQ(replace_invalid_utf8("\xC0\xAF"), k_fffd + k_fffd);              // C0 never starts a sequence
    EXPECT_EQ(replace_invalid_utf8("\xED\xA0\x80"), k_fffd + k_fffd + k_fffd); // neither does ED A0
    EXPECT_EQ(replace_invalid_utf8("\xF0\x9F\x98"), k_fffd);                   // truncated at the end
    EXPECT_EQ(replace_invalid_utf8("\xE2\xC3\xA9"), k_fffd + "\xC3\xA9");      // the é after it survives
}

TEST(Utf8, DecodesCodePoints) {
    auto step = decode_utf8("\xE2\x82\xAC rest");
    EXPECT_EQ(step.kind, Utf8Step::valid);
    EXPECT_EQ(step.length, 3u);
    EXPECT_EQ(step.code_point, U'\u20AC');
    EXPECT_EQ(decode_utf8("\xC2\x9B").code_point, U'\u009B');
    EXPECT_EQ(decode_utf8("\xF0\x9F").kind, Utf8Step::truncated);
}

// What chat relies on: after replacement, nlohmann::json serialises the text without throwing,
// and valid text is left as it was.
TEST(Utf8, ReplacedTextIsAcceptedByJson) {
    // Bytes around every boundary of the encoding table, so valid and invalid sequences both occur.
    const unsigned char alphabet[] = {'a',  0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2,
                                      0xDF, 0xE0, 0xE1, 0xED, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF};
    std::mt19937 rng(16);
    for (int round = 0; round < 20000; ++round) {
        std::string s(rng() % 12, '\0');
        for (auto& c : s) c = static_cast<char>(alphabet[rng() % sizeof alphabet]);
        std::string fixed = replace_invalid_utf8(s);
        EXPECT_EQ(first_invalid_utf8(fixed), std::nullopt);
        EXPECT_NO_THROW(nlohmann::json(fixed).dump());
        if (!first_invalid_utf8(s)) {
            EXPECT_EQ(fixed, s);
        } else {
            EXPECT_THROW(nlohmann::json(s).dump(), nlohmann::json::type_error) << "json accepts what we call invalid";
        }
    }
}
