#pragma once
// A one-line status display on stderr for slow operations (start's health wait): spinner,
// elapsed time, and the last line of the server's log. Drawn only when stderr is a terminal
// and not with -q; with NO_COLOR the spinner stays but no colour codes are written.

#include "commands.hpp"

#include "llmctl/supervisor.hpp"
#include "llmctl/units.hpp"

#include <string>

namespace llmctl::cli {

class StatusLine {
public:
    explicit StatusLine(bool quiet);
    ~StatusLine();
    StatusLine(const StatusLine&) = delete;
    StatusLine& operator=(const StatusLine&) = delete;

    bool active() const { return enabled_; }
    // Redraws the line: "<spinner> <what> <elapsed>  <last log line>".
    void update(const std::string& what, Millis elapsed, const std::string& log_path);
    // Erases the line (before a note, an error or the result is printed).
    void clear();

private:
    bool enabled_ = false;
    bool color_ = false;
    bool utf8_ = false;
    std::size_t drawn_ = 0; // columns on screen now
    unsigned frame_ = 0;
};

// The last non-empty line of a log, printable characters only, read from the file's end.
std::string last_log_line(const std::string& path);

// Notes on stderr (none with -q); they first wipe the status line, if one is drawn.
std::function<void(const std::string&)> notifier(const Globals& g, StatusLine* status = nullptr);

// Wires the TTY status line ("⠹ starting echo 1.2s  <last log line>") and the notes into a start.
void show_start_progress(StartOptions& so, StatusLine& status, const Globals& g, const std::string& name);

} // namespace llmctl::cli
