#include "output.hpp"

#include <iostream>

#include <cerrno>
#include <unistd.h>

namespace llmctl::cli {

void print_error(std::string_view what, std::string_view hint) {
    std::string text = "llmctl: error: " + std::string(what) + "\n";
    if (!hint.empty()) text += "hint: " + std::string(hint) + "\n";
    std::cerr << text << std::flush;
}

void write_stdout(std::string_view s) {
    while (!s.empty()) {
        ssize_t n = ::write(STDOUT_FILENO, s.data(), s.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw StdoutClosed{};
        s.remove_prefix(static_cast<std::size_t>(n));
    }
}

AnswerOut::AnswerOut() : terminal_(::isatty(STDOUT_FILENO)) {}

void AnswerOut::write(std::string_view text) {
    if (text.empty()) return;
    write_stdout(terminal_ ? filter_.feed(text) : std::string(text));
    wrote_ = true;
    ends_with_newline_ = text.back() == '\n';
}

void AnswerOut::end_answer() {
    if (terminal_) write_stdout(filter_.finish());
    if (!ends_with_newline_) write_stdout("\n");
    wrote_ = ends_with_newline_ = false;
}

void AnswerOut::break_line() noexcept {
    if (terminal_) {
        try {
            write_stdout(filter_.finish());
            if (wrote_ && !ends_with_newline_) write_stdout("\n");
        } catch (const StdoutClosed&) {}
    }
    wrote_ = ends_with_newline_ = false;
}

} // namespace llmctl::cli
