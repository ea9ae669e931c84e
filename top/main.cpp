// llmctl-top: the full-screen view of `llmctl top` (ncurses, as htop draws), a program of its own
// so that no other command maps the terminal library (see docs/ARCHITECTURE.md, "top"). `llmctl
// top` runs it with the state dir and config in force; each refresh reads one snapshot of the
// state file without the lock and writes nothing. A stop or restart the user confirms is run as
// `llmctl stop NAME` / `llmctl restart NAME`, in the background, its outcome on the status line.
//
//   llmctl-top --llmctl PATH --state-dir DIR [--config FILE] [--interval MS] [--once] [--plain]
//
// A dumb terminal (TERM unset or "dumb"), or a stdout that is not a terminal, gets the plain
// refresh: the view as text every interval (--once: one time).

#include "view.hpp"

#include "llmctl/config.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/top_snapshot.hpp"

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <curses.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <optional>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace {

using namespace llmctl_top;
using clock_type = std::chrono::steady_clock;

struct Options {
    std::string llmctl, state_dir, config;
    long interval_ms = 1000;
    bool once = false, plain = false;
};

volatile std::sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

// The command line `llmctl top` gives it; a bad one (never from llmctl) is exit 2 with CLI11's word.
Options parse(int argc, char** argv) {
    Options o;
    CLI::App app{"The full-screen view of `llmctl top` (run by it)", "llmctl-top"};
    app.add_option("--llmctl", o.llmctl, "The llmctl that runs a confirmed stop or restart")->type_name("PATH")->required();
    app.add_option("--state-dir", o.state_dir, "The state dir in force")->type_name("DIR")->required();
    app.add_option("--config", o.config, "The config file in force")->type_name("FILE");
    app.add_option("--interval", o.interval_ms, "Milliseconds between refreshes (100 at least)")
        ->type_name("MS")
        ->check(CLI::Range(100L, 86'400'000L));
    app.add_flag("--once", o.once, "Print the view once as text");
    app.add_flag("--plain", o.plain, "The view as text every interval, not full-screen");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        std::exit(app.exit(e));
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "llmctl-top: %s (it is run by llmctl; --help lists its options)\n", e.what());
        std::exit(2);
    }
    return o;
}

// The config in force, read again at each refresh (an edit shows); a broken one: none (the view
// then has no slot caps or pool budgets) and its error on the status line.
struct ConfigRead {
    std::optional<llmctl::Config> config;
    std::string error;
};
ConfigRead read_config(const Options& o) {
    ConfigRead r;
    try {
        r.config = llmctl::load_config(o.config);
    } catch (const llmctl::Error& e) {
        r.error = e.what();
    }
    return r;
}

struct Frame {
    std::vector<llmctl::TopServer> servers;
    std::vector<Line> lines;
    std::string config_error;
};

Frame read_frame(const Options& o, SortKey key) {
    ConfigRead c = read_config(o);
    Frame f;
    llmctl::TopSnapshot snap = llmctl::read_top(o.state_dir, c.config ? &*c.config : nullptr);
    f.servers = sorted_servers(std::move(snap.servers), key);
    f.lines = view_lines(snap, f.servers, key, o.state_dir);
    f.config_error = c.error;
    return f;
}

// --- the plain refresh ---

int run_plain(const Options& o) {
    for (bool first = true; !g_interrupted; first = false) {
        Frame f;
        try {
            f = read_frame(o, SortKey::name);
        } catch (const llmctl::Error& e) {
            std::fprintf(stderr, "llmctl: %s\n", e.what());
            return 1;
        }
        std::string text = first ? "" : "\n";
        for (const Line& l : f.lines) text += l.text + "\n";
        if (!f.config_error.empty()) text += "config: " + f.config_error + "\n";
        if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) return 0; // (the reader went)
        if (o.once) return 0;
        for (auto until = clock_type::now() + std::chrono::milliseconds(o.interval_ms); !g_interrupted && clock_type::now() < until;)
            ::usleep(50'000);
    }
    return 130;
}

// --- an action the user confirmed: `llmctl stop|restart NAME`, in the background ---

class Action {
public:
    bool running() const { return pid_ > 0; }
    // Starts it; false (and why on the status) when it cannot run.
    bool start(const Options& o, const std::string& verb, const std::string& name, std::string& status) {
        char path[] = "/tmp/llmctl-top-XXXXXX";
        const int out = ::mkostemp(path, O_CLOEXEC);
        if (out < 0) {
            status = fmt::format("cannot run {} {}: {}", verb, name, std::strerror(errno));
            return false;
        }
        ::unlink(path); // (read through the descriptor, gone when it closes)
        std::vector<std::string> args = {o.llmctl, "--state-dir", o.state_dir};
        if (!o.config.empty()) args.insert(args.end(), {"--config", o.config});
        args.insert(args.end(), {"-q", verb, name});
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, out, 1);
        posix_spawn_file_actions_adddup2(&fa, out, 2);
        // A process group of its own: a Ctrl-C that ends top does not cut a stop's drain short.
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
        const int rc = ::posix_spawn(&pid_, o.llmctl.c_str(), &fa, &attr, argv.data(), environ);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) {
            ::close(out);
            pid_ = 0;
            status = fmt::format("cannot run {}: {}", o.llmctl, std::strerror(rc));
            return false;
        }
        out_ = out;
        verb_ = verb;
        name_ = name;
        status = fmt::format("{} {}...", verb == "stop" ? "stopping" : "restarting", name);
        return true;
    }
    // When it ended: its outcome for the status line.
    std::optional<std::string> finished() {
        if (pid_ <= 0) return std::nullopt;
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) != pid_) return std::nullopt;
        pid_ = 0;
        std::string said;
        char buf[4096];
        ::lseek(out_, 0, SEEK_SET);
        for (ssize_t n; (n = ::read(out_, buf, sizeof buf)) > 0;) said.append(buf, static_cast<std::size_t>(n));
        ::close(out_);
        while (!said.empty() && said.back() == '\n') said.pop_back();
        if (auto nl = said.find('\n'); nl != std::string::npos) said.resize(nl); // its first line
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return fmt::format("{} {}: done", verb_, name_);
        return fmt::format("{} {} failed (exit {}): {}", verb_, name_, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), said);
    }

private:
    pid_t pid_ = 0;
    int out_ = -1;
    std::string verb_, name_;
};

// --- the full screen ---

enum Pair { k_green = 1, k_yellow, k_red, k_cyan };

int status_pair(const std::string& status) {
    if (status == "running") return k_green;
    if (status == "starting" || status == "stopping" || status == "restarting" || status == "admitting") return k_yellow;
    if (status == "failed" || status == "dead") return k_red;
    return 0;
}

class Screen {
public:
    explicit Screen(const Options& o) : o_(o) {
        initscr();
        cbreak();
        noecho();
        keypad(stdscr, TRUE);
        curs_set(0);
        timeout(100);
        colour_ = has_colors() && !std::getenv("NO_COLOR");
        if (colour_) {
            start_color();
            use_default_colors();
            init_pair(k_green, COLOR_GREEN, -1);
            init_pair(k_yellow, COLOR_YELLOW, -1);
            init_pair(k_red, COLOR_RED, -1);
            init_pair(k_cyan, COLOR_CYAN, -1);
        }
    }
    ~Screen() { endwin(); }
    Screen(const Screen&) = delete;
    Screen& operator=(const Screen&) = delete;

    int run() {
        auto next = clock_type::now();
        for (;;) {
            if (g_interrupted) return 130;
            if (auto done = action_.finished()) {
                status_ = *done;
                next = clock_type::now(); // (show what it did at once)
            }
            if (clock_type::now() >= next) {
                refresh_frame();
                next = clock_type::now() + std::chrono::milliseconds(o_.interval_ms);
            }
            const int key = getch();
            if (key == ERR) continue;
            if (!on_key(key)) return 0;
            draw();
        }
    }

private:
    void refresh_frame() {
        try {
            frame_ = read_frame(o_, sort_);
        } catch (const llmctl::Error& e) {
            status_ = e.what();
        }
        keep_selection();
        draw();
    }

    // The selection follows its server's name across refreshes and sorts.
    void keep_selection() {
        if (frame_.servers.empty()) {
            selected_ = 0;
            return;
        }
        for (std::size_t i = 0; i < frame_.servers.size(); ++i)
            if (frame_.servers[i].name == selected_name_) {
                selected_ = static_cast<int>(i);
                return;
            }
        selected_ = std::min<int>(selected_, static_cast<int>(frame_.servers.size()) - 1);
        selected_name_ = frame_.servers[static_cast<std::size_t>(selected_)].name;
    }

    void select(int i) {
        if (frame_.servers.empty()) return;
        selected_ = std::clamp(i, 0, static_cast<int>(frame_.servers.size()) - 1);
        selected_name_ = frame_.servers[static_cast<std::size_t>(selected_)].name;
    }

    // False: quit.
    bool on_key(int key) {
        if (!confirm_.empty()) { // y confirms; any other key cancels
            const std::string verb = confirm_;
            confirm_.clear();
            if (key == 'y' || key == 'Y') {
                if (!action_.running()) action_.start(o_, verb, confirm_name_, status_);
            } else {
                status_ = verb + " cancelled";
            }
            return true;
        }
        switch (key) {
        case 'q':
        case 'Q': return false;
        case KEY_UP:
        case 'k': select(selected_ - 1); break;
        case KEY_DOWN:
        case 'j': select(selected_ + 1); break;
        case 'o':
            sort_ = next_sort(sort_);
            refresh_frame();
            break;
        case 's':
        case 'r': ask(key == 's' ? "stop" : "restart"); break;
        case KEY_RESIZE: break;
        default: break;
        }
        return true;
    }

    void ask(const std::string& verb) {
        if (frame_.servers.empty()) return;
        if (action_.running()) {
            status_ = "wait: the last action still runs";
            return;
        }
        confirm_ = verb;
        confirm_name_ = frame_.servers[static_cast<std::size_t>(selected_)].name;
        status_ = fmt::format("{} {}? y to confirm, any other key cancels", verb, confirm_name_);
    }

    void draw() {
        erase();
        int rows = 0, cols = 0;
        getmaxyx(stdscr, rows, cols);
        int y = 0;
        for (const Line& l : frame_.lines) {
            if (y >= rows - 2) break;
            attr_t a = A_NORMAL;
            short pair = 0;
            if (l.kind == Line::Kind::title) a = A_BOLD;
            if (l.kind == Line::Kind::section) a = A_BOLD;
            if (l.kind == Line::Kind::header) a = A_UNDERLINE;
            if (l.kind == Line::Kind::server) {
                pair = static_cast<short>(status_pair(l.status));
                if (l.server == selected_) a = A_REVERSE;
            }
            if (colour_ && pair) a |= COLOR_PAIR(pair);
            if (colour_ && l.kind == Line::Kind::section) a |= COLOR_PAIR(k_cyan);
            attrset(a);
            mvaddnstr(y++, 0, l.text.c_str(), cols);
        }
        attrset(A_NORMAL);
        std::string help = "q quit  up/down select  o sort  s stop  r restart";
        std::string bottom = status_.empty() ? help : status_ + "   |   " + help;
        if (!frame_.config_error.empty() && status_.empty()) bottom = "config: " + frame_.config_error + "   |   " + help;
        attrset(A_REVERSE);
        mvaddnstr(rows - 1, 0, (bottom + std::string(static_cast<std::size_t>(std::max(0, cols)), ' ')).c_str(), cols);
        attrset(A_NORMAL);
        refresh();
    }

    const Options& o_;
    bool colour_ = false;
    Frame frame_;
    SortKey sort_ = SortKey::name;
    int selected_ = 0;
    std::string selected_name_, status_, confirm_, confirm_name_;
    Action action_;
};

bool dumb_terminal() {
    const char* term = std::getenv("TERM");
    return !::isatty(STDOUT_FILENO) || !::isatty(STDIN_FILENO) || !term || !*term || std::strcmp(term, "dumb") == 0;
}

} // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    if (o.plain || o.once || dumb_terminal()) return run_plain(o);
    Screen screen(o);
    return screen.run();
}
