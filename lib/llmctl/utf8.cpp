#include "llmctl/utf8.hpp"

namespace llmctl {

namespace {

bool continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// The allowed range of the second byte after lead byte `lead` (Unicode Table 3-7): it is what
// rules out overlong forms (E0, F0), surrogates (ED) and code points above U+10FFFF (F4).
std::pair<unsigned char, unsigned char> second_byte_range(unsigned char lead) {
    switch (lead) {
    case 0xE0: return {0xA0, 0xBF};
    case 0xED: return {0x80, 0x9F};
    case 0xF0: return {0x90, 0xBF};
    case 0xF4: return {0x80, 0x8F};
    default: return {0x80, 0xBF};
    }
}

} // namespace

Utf8Step decode_utf8(std::string_view s) {
    auto lead = static_cast<unsigned char>(s[0]);
    if (lead < 0x80) return {Utf8Step::valid, 1, lead};
    std::size_t need;
    char32_t cp;
    if (lead >= 0xC2 && lead <= 0xDF)
        need = 2, cp = lead & 0x1F;
    else if (lead >= 0xE0 && lead <= 0xEF)
        need = 3, cp = lead & 0x0F;
    else if (lead >= 0xF0 && lead <= 0xF4)
        need = 4, cp = lead & 0x07;
    else
        return {Utf8Step::invalid, 1, 0}; // a continuation byte, C0, C1 or F5..FF
    auto [lo, hi] = second_byte_range(lead);
    for (std::size_t i = 1; i < need; ++i) {
        if (i == s.size()) return {Utf8Step::truncated, i, 0};
        auto c = static_cast<unsigned char>(s[i]);
        bool fits = i == 1 ? c >= lo && c <= hi : continuation(c);
        if (!fits) return {Utf8Step::invalid, i, 0}; // the bytes so far; `c` starts the next step
        cp = (cp << 6) | (c & 0x3F);
    }
    return {Utf8Step::valid, need, cp};
}

std::optional<std::size_t> first_invalid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        Utf8Step step = decode_utf8(s.substr(i));
        if (step.kind != Utf8Step::valid) return i;
        i += step.length;
    }
    return std::nullopt;
}

std::string replace_invalid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        Utf8Step step = decode_utf8(s.substr(i));
        if (step.kind == Utf8Step::valid)
            out.append(s.substr(i, step.length));
        else
            out += "\xEF\xBF\xBD";
        i += step.length;
    }
    return out;
}

} // namespace llmctl
