#include "progress.hpp"

#include "llmctl/files.hpp"
#include "llmctl/strings.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <iostream>
#include <sys/ioctl.h>
#include <unistd.h>

namespace llmctl::cli {

namespace {

std::size_t terminal_width() {
    winsize ws{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

// Display columns of UTF-8 text (one per code point; wide characters are rare in logs).
std::size_t columns(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++n;
    return n;
}

// The longest prefix of `s` that fits in `width` columns, cut at a code point boundary.
std::string fit(const std::string& s, std::size_t width) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
            if (n == width) return s.substr(0, i);
            ++n;
        }
    }
    return s;
}

void write_all(const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::write(STDERR_FILENO, s.data() + off, s.size() - off);
        if (n <= 0) return;
        off += static_cast<std::size_t>(n);
    }
}

} // namespace

std::string last_log_line(const std::string& path) {
    std::string tail = read_tail(path, 4096).value_or("");
    while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r' || tail.back() == ' ')) tail.pop_back();
    auto nl = tail.rfind('\n');
    std::string line = nl == std::string::npos ? tail : tail.substr(nl + 1);
    std::string out;
    for (unsigned char c : line) {
        if (c == '\t')
            out += ' ';
        else if (c >= 0x20 && c != 0x7f)
            out += static_cast<char>(c); // drops escapes and \r
    }
    return out;
}

StatusLine::StatusLine(bool quiet) {
    const char* term = std::getenv("TERM");
    enabled_ = !quiet && ::isatty(STDERR_FILENO) && !(term && std::strcmp(term, "dumb") == 0);
    const char* no_color = std::getenv("NO_COLOR");
    color_ = enabled_ && !(no_color && *no_color);
    for (const char* var : {"LC_ALL", "LC_CTYPE", "LANG"}) {
        const char* v = std::getenv(var);
        if (v && *v) {
            std::string s = v;
            utf8_ = s.find("UTF-8") != std::string::npos || s.find("utf8") != std::string::npos || s.find("UTF8") != std::string::npos ||
                    s.find("utf-8") != std::string::npos;
            break;
        }
    }
}

StatusLine::~StatusLine() { clear(); }

void StatusLine::update(const std::string& what, Millis elapsed, const std::string& log_path) {
    if (!enabled_) return;
    static const char* braille[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};
    static const char* ascii[] = {"|", "/", "-", "\\"};
    std::string spin = utf8_ ? braille[frame_ % 10] : ascii[frame_ % 4];
    ++frame_;
    std::string head = fmt::format("{} {} {:.1f}s", spin, what, static_cast<double>(elapsed.count()) / 1000.0);
    std::string log = last_log_line(log_path);
    std::size_t width = terminal_width() - 1; // never touch the last column: no auto-wrap
    std::string text = fit(head, width);
    std::size_t used = columns(text);
    std::string shown_log = used + 2 < width && !log.empty() ? fit(log, width - used - 2) : std::string();
    std::size_t total = used + (shown_log.empty() ? 0 : 2 + columns(shown_log));
    std::string out = "\r" + text;
    if (!shown_log.empty()) out += color_ ? "  \x1b[2m" + shown_log + "\x1b[0m" : "  " + shown_log;
    if (total < drawn_) out += std::string(drawn_ - total, ' '); // wipe the rest of a longer line
    drawn_ = std::max(total, drawn_);
    write_all(out);
}

void StatusLine::clear() {
    if (!enabled_ || drawn_ == 0) return;
    // Two more columns for the "^C" a terminal echoes after the line when Ctrl-C ends the wait.
    write_all("\r" + std::string(std::min(drawn_ + 2, terminal_width() - 1), ' ') + "\r");
    drawn_ = 0;
}

// Notes on stderr (none with -q); they first wipe the status line, if one is drawn.
std::function<void(const std::string&)> notifier(const Globals& g, StatusLine* status) {
    if (g.verbosity < 0) return {};
    return [status](const std::string& s) {
        if (status) status->clear();
        std::cerr << "llmctl: " << s << "\n";
    };
}

// Wires the TTY status line ("⠹ starting echo 1.2s  <last log line>") into a start.
void show_start_progress(StartOptions& so, StatusLine& status, const Globals& g, const std::string& name) {
    so.progress = notifier(g, &status);
    if (g.verbosity > 0) so.detail = so.progress;
    if (status.active())
        so.waiting = [&status, name](const std::string& log, Millis elapsed) { status.update("starting " + name, elapsed, log); };
}

} // namespace llmctl::cli
