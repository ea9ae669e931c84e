#include "llmctl/line_editor.hpp"

#include "llmctl/errors.hpp"

#include <cerrno>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <type_traits>
#include <utility>

// No build dependency on libedit-dev: the readline-compatible entry points used here have kept
// their signatures for decades. Where the header is installed, the compiler checks them.
#if __has_include(<editline/readline.h>)
#include <editline/readline.h>
#define LLMCTL_CHECK_LIBEDIT_TYPES 1
#endif

namespace llmctl {

namespace {

// The parts of libedit's readline interface chat uses, resolved once per process. The library
// stays loaded until exit (libedit keeps global state; unloading it buys nothing).
struct Libedit {
    char* (*readline)(const char*) = nullptr;
    int (*add_history)(const char*) = nullptr;
    FILE** rl_outstream = nullptr;
    int* rl_inhibit_completion = nullptr;
};

#ifdef LLMCTL_CHECK_LIBEDIT_TYPES
static_assert(std::is_same_v<decltype(Libedit::readline), decltype(&::readline)>);
static_assert(std::is_same_v<decltype(Libedit::add_history), decltype(&::add_history)>);
static_assert(std::is_same_v<decltype(Libedit::rl_outstream), decltype(&::rl_outstream)>);
static_assert(std::is_same_v<decltype(Libedit::rl_inhibit_completion), decltype(&::rl_inhibit_completion)>);
#endif

// Loads `library`; nullptr when it is missing or lacks a symbol (then lines are read plain).
const Libedit* load_libedit(const char* library) {
    void* h = ::dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (!h) return nullptr;
    static Libedit lib;
    lib.readline = reinterpret_cast<decltype(lib.readline)>(::dlsym(h, "readline"));
    lib.add_history = reinterpret_cast<decltype(lib.add_history)>(::dlsym(h, "add_history"));
    lib.rl_outstream = static_cast<FILE**>(::dlsym(h, "rl_outstream"));
    lib.rl_inhibit_completion = static_cast<int*>(::dlsym(h, "rl_inhibit_completion"));
    if (!lib.readline || !lib.add_history || !lib.rl_outstream) return nullptr;
    return &lib;
}

const Libedit* g_libedit = nullptr;

bool dumb_terminal() {
    const char* term = std::getenv("TERM");
    return !term || !*term || std::strcmp(term, "dumb") == 0;
}

void write_all(int fd, std::string_view s) {
    while (!s.empty()) {
        ssize_t n = ::write(fd, s.data(), s.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; // the prompt is a courtesy: a closed stderr does not stop the loop
        s.remove_prefix(static_cast<std::size_t>(n));
    }
}

} // namespace

LineEditor::LineEditor(const char* library, int in_fd, int prompt_fd) : in_fd_(in_fd), prompt_fd_(prompt_fd) {
    if (!library || in_fd != STDIN_FILENO || prompt_fd != STDERR_FILENO) return;
    if (!::isatty(in_fd) || !::isatty(prompt_fd) || dumb_terminal()) return;
    g_libedit = load_libedit(library);
    if (!g_libedit) return;
    // libedit decodes typed bytes with the locale's charset: without this, é arrives as \303\251.
    std::setlocale(LC_CTYPE, "");
    *g_libedit->rl_outstream = stderr; // the prompt and the echo stay off stdout, which holds answers
    // Tab inserts itself instead of completing file names: pasted code keeps its tabs.
    if (g_libedit->rl_inhibit_completion) *g_libedit->rl_inhibit_completion = 1;
    editing_ = true;
}

LineEditor::Result LineEditor::read(const std::string& prompt, const std::function<bool()>& interrupted) {
    return editing_ ? read_edited(prompt, interrupted) : read_plain(prompt, interrupted);
}

// libedit's own signal handling (on by default) restores the terminal, passes SIGINT on to our
// handler and makes readline return NULL, as it does at the end of the input.
LineEditor::Result LineEditor::read_edited(const std::string& prompt, const std::function<bool()>& interrupted) {
    char* line = g_libedit->readline(prompt.c_str());
    if (!line) {
        bool ctrl_c = interrupted && interrupted();
        write_all(prompt_fd_, ctrl_c ? "^C\n" : "\n");
        return {ctrl_c ? Status::interrupted : Status::end, {}};
    }
    std::string text = line;
    std::free(line);
    return {Status::line, std::move(text)};
}

// Cooked mode: the terminal delivers a line at a time, echoes ^C and drops the typed line on
// Ctrl-C; read(2) then fails with EINTR.
LineEditor::Result LineEditor::read_plain(const std::string& prompt, const std::function<bool()>& interrupted) {
    write_all(prompt_fd_, prompt);
    for (;;) {
        if (auto nl = pending_.find('\n'); nl != std::string::npos) {
            std::string text = pending_.substr(0, nl);
            pending_.erase(0, nl + 1);
            return {Status::line, std::move(text)};
        }
        char buf[4096];
        ssize_t n = ::read(in_fd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            if (!interrupted || !interrupted()) continue;
            pending_.clear();
            write_all(prompt_fd_, "\n");
            return {Status::interrupted, {}};
        }
        if (n < 0 && errno != EIO) throw_sys("read", "stdin", errno); // EIO: the terminal hung up
        if (n <= 0) {
            if (!pending_.empty()) return {Status::line, std::exchange(pending_, {})}; // a last line without newline
            if (::isatty(in_fd_)) write_all(prompt_fd_, "\n");                         // Ctrl-D: the shell's prompt on a line of its own
            return {Status::end, {}};
        }
        pending_.append(buf, static_cast<std::size_t>(n));
    }
}

void LineEditor::remember(const std::string& line) {
    if (!editing_ || line.empty() || line == last_) return;
    g_libedit->add_history(line.c_str());
    last_ = line;
}

} // namespace llmctl
