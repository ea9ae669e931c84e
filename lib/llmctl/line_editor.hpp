#pragma once
// The line reader of chat's interactive loop. With libedit (Debian's libedit2) the line can be
// edited (arrows, Home/End, Ctrl-A/E/W/U, ...) and Up/Down recall the lines typed before in this
// session. libedit is loaded with dlopen when the loop starts, so no other command pays for
// loading it (start-up is most of a short invocation's cost: docs/BENCHMARKS.md). Without it
// (not installed), with TERM=dumb, or when stdin or stderr is not a terminal, lines are read
// as the terminal's cooked mode delivers them (Backspace works, arrows do not).

#include <functional>
#include <string>
#include <unistd.h>

namespace llmctl {

class LineEditor {
public:
    enum class Status {
        line,        // `text` holds the line, without its newline
        interrupted, // Ctrl-C: the line typed so far is dropped
        end,         // Ctrl-D on an empty line, or the end of the input
    };
    struct Result {
        Status status;
        std::string text;
    };

    // `library`: the libedit to load (tests name a missing one); reads `in_fd`, prompts on
    // `prompt_fd`. Editing needs both on a terminal, and stdin and stderr (libedit's streams).
    explicit LineEditor(const char* library = "libedit.so.2", int in_fd = STDIN_FILENO, int prompt_fd = STDERR_FILENO);

    // True when lines are read through libedit.
    bool editing() const { return editing_; }

    // Shows `prompt` and reads one line. A signal ends the read when its handler is installed
    // without SA_RESTART; `interrupted()` (the caller's SIGINT flag) then tells a Ctrl-C from
    // other signals. After `interrupted` and `end` the cursor is at the start of a new line.
    Result read(const std::string& prompt, const std::function<bool()>& interrupted);

    // Adds a line to the history that Up recalls (not a repeat of the line just before).
    void remember(const std::string& line);

private:
    Result read_plain(const std::string& prompt, const std::function<bool()>& interrupted);
    Result read_edited(const std::string& prompt, const std::function<bool()>& interrupted);

    bool editing_ = false;
    int in_fd_, prompt_fd_;
    std::string pending_; // plain reading: bytes read after the line returned
    std::string last_;    // the line remembered last
};

} // namespace llmctl
