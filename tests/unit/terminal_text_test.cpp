#include "llmctl/terminal_text.hpp"

#include <gtest/gtest.h>

using namespace llmctl;

namespace {

std::string whole(const std::string& s) {
    TerminalText t;
    std::string out = t.feed(s);
    return out + t.finish();
}

std::string bytewise(const std::string& s) {
    TerminalText t;
    std::string out;
    for (char c : s) out += t.feed(std::string_view(&c, 1));
    return out + t.finish();
}

} // namespace

TEST(TerminalText, PlainTextPassesUnchanged) {
    std::string s = "Hello, wörld! € 😀\n\tindented\r\nCRLF line\n";
    EXPECT_EQ(whole(s), s);
    EXPECT_EQ(bytewise(s), s);
}

TEST(TerminalText, EscapeSequencesBecomeVisibleText) {
    EXPECT_EQ(whole("\x1b]0;pwned\x07"), "^[]0;pwned^G"); // retitle the window
    EXPECT_EQ(whole("\x1b[2J\x1b[H"), "^[[2J^[[H");       // clear the screen, cursor home
    EXPECT_EQ(whole("a\bb\x7f"), "a^Hb^?");
    EXPECT_EQ(whole(std::string("nul\0!", 5)), "nul^@!");
    EXPECT_EQ(whole("\x1b"
                    "P"
                    "x"
                    "\x1b\\"),
              "^[Px^[\\"); // DCS
}

TEST(TerminalText, C1ControlsBecomeVisibleText) {
    EXPECT_EQ(whole("\xC2\x9B"
                    "2J"),
              "<U+009B>2J"); // 8-bit CSI
    EXPECT_EQ(whole("\xC2\x9D"
                    "0;x\xC2\x9C"),
              "<U+009D>0;x<U+009C>");
    EXPECT_EQ(whole("\xC2\xA0nbsp"), "\xC2\xA0nbsp"); // U+00A0 is text
}

TEST(TerminalText, LoneCarriageReturnIsShown) {
    EXPECT_EQ(whole("secret\rpublic"), "secret^Mpublic"); // \r would let later text hide earlier text
    EXPECT_EQ(whole("end\r"), "end^M");
    EXPECT_EQ(whole("line\r\n"), "line\r\n");
}

TEST(TerminalText, InvalidBytesBecomeReplacementCharacters) {
    EXPECT_EQ(whole("a\x9b"
                    "2J"),
              "a\xEF\xBF\xBD"
              "2J"); // a raw 0x9B byte is CSI to an 8-bit terminal
    EXPECT_EQ(whole("cut \xE2\x82"), "cut \xEF\xBF\xBD");
}

// A sequence split between two pieces (two stream deltas) is judged as a whole.
TEST(TerminalText, StateCarriesAcrossPieces) {
    for (const std::string s : {"x\r\ny", "x\ry",
                                "\xC2\x9B"
                                "1m",
                                "caf\xC3\xA9", "\xF0\x9F\x98\x80", "\x1b[31mred\x1b[0m"}) {
        EXPECT_EQ(bytewise(s), whole(s)) << s;
        for (std::size_t cut = 0; cut <= s.size(); ++cut) {
            TerminalText t;
            std::string split = t.feed(s.substr(0, cut));
            split += t.feed(s.substr(cut));
            split += t.finish();
            EXPECT_EQ(split, whole(s)) << "cut at " << cut;
        }
    }
}

TEST(TerminalText, OutputHasNoControlExceptNewlineTabAndCrlf) {
    std::string all;
    for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
    for (int c = 0x80; c < 0xA0; ++c) all += "\xC2" + std::string(1, static_cast<char>(c));
    std::string out = bytewise(all);
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto c = static_cast<unsigned char>(out[i]);
        bool allowed = c >= 0x20 || c == '\n' || c == '\t' || (c == '\r' && i + 1 < out.size() && out[i + 1] == '\n');
        EXPECT_TRUE(allowed) << "byte " << int(c) << " at " << i;
        EXPECT_NE(c, 0x7F);
        if (c == 0xC2 && i + 1 < out.size()) {
            EXPECT_GE(static_cast<unsigned char>(out[i + 1]), 0xA0) << "a C1 control at " << i;
        }
    }
}
