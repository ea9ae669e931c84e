#include "llmctl/line_editor.hpp"

#include <chrono>
#include <cstdlib>
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <thread>
#include <unistd.h>

using namespace llmctl;

namespace {

using Status = LineEditor::Status;

// A pseudo-terminal standing in for the user's: its slave becomes stdin and stderr (libedit's
// streams) for the test's lifetime; the master is the keyboard and the screen.
class FakeTerminal {
public:
    FakeTerminal() {
        master_ = ::posix_openpt(O_RDWR | O_NOCTTY);
        if (master_ < 0 || ::grantpt(master_) != 0 || ::unlockpt(master_) != 0) throw std::runtime_error("no pty");
        slave_ = ::open(::ptsname(master_), O_RDWR | O_NOCTTY);
        winsize ws{24, 80, 0, 0};
        ::ioctl(master_, TIOCSWINSZ, &ws);
        saved_in_ = ::dup(STDIN_FILENO);
        saved_err_ = ::dup(STDERR_FILENO);
        ::dup2(slave_, STDIN_FILENO);
        ::dup2(slave_, STDERR_FILENO);
        ::setenv("TERM", "xterm", 1);
        // The screen is drained all along, so echo and redraws never fill the pty's buffer.
        reader_ = std::thread([this] {
            char buf[1024];
            while (::read(master_, buf, sizeof buf) > 0) {}
        });
    }
    ~FakeTerminal() {
        if (typist_.joinable()) typist_.join();
        ::dup2(saved_in_, STDIN_FILENO);
        ::dup2(saved_err_, STDERR_FILENO);
        ::close(slave_);
        ::close(master_); // ends the reader's read
        reader_.join();
        ::close(saved_in_);
        ::close(saved_err_);
    }
    // Types `keys` as soon as a reader waits for a line: plain reading takes typed-ahead keys,
    // but libedit switches the terminal to raw mode first, and a Ctrl-D typed before that is
    // consumed as cooked mode's end-of-file. So the typist waits for raw mode (ICANON off).
    void type_when_editing(const std::string& keys) {
        if (typist_.joinable()) typist_.join();
        typist_ = std::thread([this, keys] {
            for (int i = 0; i < 10000 && cooked(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            (void)!::write(master_, keys.data(), keys.size());
        });
    }
    void type(const std::string& keys) { ASSERT_EQ(::write(master_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size())); }

private:
    bool cooked() const {
        termios t{};
        return ::tcgetattr(slave_, &t) == 0 && (t.c_lflag & ICANON);
    }
    int master_ = -1, slave_ = -1, saved_in_ = -1, saved_err_ = -1;
    std::thread reader_, typist_;
};

bool libedit_installed() {
    void* h = ::dlopen("libedit.so.2", RTLD_NOW | RTLD_LOCAL);
    return h != nullptr;
}

} // namespace

TEST(LineEditor, PlainReadingSplitsLines) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    std::string input = "one\ntwo\n\nlast without newline";
    ASSERT_EQ(::write(p[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
    ::close(p[1]);
    int devnull = ::open("/dev/null", O_WRONLY);
    LineEditor editor("libedit.so.2", p[0], devnull); // not a terminal: no editing
    EXPECT_FALSE(editor.editing());
    for (std::string want : {"one", "two", "", "last without newline"}) {
        auto r = editor.read("> ", {});
        EXPECT_EQ(r.status, Status::line);
        EXPECT_EQ(r.text, want);
    }
    EXPECT_EQ(editor.read("> ", {}).status, Status::end);
    ::close(p[0]);
    ::close(devnull);
}

TEST(LineEditor, WithoutLibeditLinesAreReadPlain) {
    FakeTerminal term;
    LineEditor editor("libllmctl-no-such-library.so.0");
    EXPECT_FALSE(editor.editing());
    term.type("typed line\n");
    auto r = editor.read("> ", {});
    EXPECT_EQ(r.status, Status::line);
    EXPECT_EQ(r.text, "typed line");
}

TEST(LineEditor, DumbTerminalReadsPlain) {
    FakeTerminal term;
    ::setenv("TERM", "dumb", 1);
    LineEditor editor;
    EXPECT_FALSE(editor.editing());
}

// Left arrow moves the cursor (the edit lands inside the line) and Up recalls the line before.
TEST(LineEditor, LibeditEditsAndRecalls) {
    if (!libedit_installed()) GTEST_SKIP() << "libedit2 is not installed";
    FakeTerminal term;
    LineEditor editor;
    ASSERT_TRUE(editor.editing());
    term.type_when_editing("wrld\x1b[D\x1b[D\x1b[Do\r");
    auto r = editor.read("> ", {});
    ASSERT_EQ(r.status, Status::line);
    EXPECT_EQ(r.text, "world");
    editor.remember(r.text);
    term.type_when_editing("\x1b[A!\r");
    r = editor.read("> ", {});
    ASSERT_EQ(r.status, Status::line);
    EXPECT_EQ(r.text, "world!");
    term.type_when_editing("a\tb\r"); // Tab inserts itself: pasted code keeps its tabs
    EXPECT_EQ(editor.read("> ", {}).text, "a\tb");
    term.type_when_editing("\x04"); // Ctrl-D on an empty line
    EXPECT_EQ(editor.read("> ", {}).status, Status::end);
}
