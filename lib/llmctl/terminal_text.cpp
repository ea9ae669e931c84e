#include "llmctl/terminal_text.hpp"

#include "llmctl/utf8.hpp"

#include <fmt/format.h>

namespace llmctl {

namespace {

void append_caret(std::string& out, unsigned char c) {
    out += '^';
    out += c == 0x7F ? '?' : static_cast<char>(c + 0x40);
}

} // namespace

std::string TerminalText::feed(std::string_view piece) {
    std::string text = std::move(held_);
    text.append(piece);
    held_.clear();
    std::string out;
    out.reserve(text.size());
    std::string_view s = text;
    for (std::size_t i = 0; i < s.size();) {
        Utf8Step step = decode_utf8(s.substr(i));
        if (step.kind == Utf8Step::truncated) { // the rest of the sequence comes with the next piece
            held_ = s.substr(i);
            break;
        }
        if (step.kind == Utf8Step::invalid) {
            out += "\xEF\xBF\xBD";
        } else if (char32_t cp = step.code_point; cp == '\n' || cp == '\t') {
            out += static_cast<char>(cp);
        } else if (cp == '\r') {
            if (i + 1 == s.size()) { // is it a line end? the next piece tells
                held_ = "\r";
                break;
            }
            if (s[i + 1] == '\n')
                out += '\r';
            else
                append_caret(out, '\r');
        } else if (cp < 0x20 || cp == 0x7F) {
            append_caret(out, static_cast<unsigned char>(cp));
        } else if (cp >= 0x80 && cp <= 0x9F) {
            out += fmt::format("<U+{:04X}>", static_cast<unsigned>(cp));
        } else {
            out.append(s.substr(i, step.length));
        }
        i += step.length;
    }
    return out;
}

std::string TerminalText::finish() {
    std::string held = std::move(held_);
    held_.clear();
    if (held == "\r") return "^M";
    return held.empty() ? "" : "\xEF\xBF\xBD"; // a sequence the output never completed
}

} // namespace llmctl
