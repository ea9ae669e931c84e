#pragma once
// stdout for commands that stream (chat, logs -f): every byte written, and a reader that went
// away (EPIPE; SIGPIPE is ignored) ends the command quietly. Ctrl-C as a flag to poll is
// llmctl/caught_signals.hpp.

#include "llmctl/errors.hpp"
#include "llmctl/terminal_text.hpp"

#include <string_view>

namespace llmctl::cli {

// The one place errors reach stderr: "llmctl: error: WHAT", then "hint: HINT" when there is one.
void print_error(std::string_view what, std::string_view hint = {});
inline void print_error(const Error& e) { print_error(e.what(), e.hint()); }

struct StdoutClosed {};

// Writes all of `s` to stdout; throws StdoutClosed when the reader is gone.
void write_stdout(std::string_view s);

// A model's answers on stdout. On a terminal its text is made harmless first (TerminalText: no
// escape sequence reaches the terminal), and the writer knows whether a line is open, so an
// error starts on a line of its own. Piped, every byte is written as it came.
class AnswerOut {
public:
    AnswerOut();
    // Writes the next piece of an answer; throws StdoutClosed.
    void write(std::string_view text);
    // Ends an answer: what the terminal filter held back, then a newline unless the answer
    // ended with one.
    void end_answer();
    // Before an error or a note on stderr: on a terminal, ends a partly written line. Never throws.
    void break_line() noexcept;

private:
    bool terminal_;
    TerminalText filter_;
    bool wrote_ = false;             // this answer has written something
    bool ends_with_newline_ = false; // and its last byte was '\n'
};

} // namespace llmctl::cli
