// llmctl logs: tail, follow (across rotation and truncation) and rotate server logs.
// Takes no lock: it reads files, and follows rotations through the NAME.log.offset sidecar.

#include "commands.hpp"
#include "output.hpp"

#include "llmctl/config.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/fd.hpp"
#include "llmctl/logfile.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/strings.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <cmath>
#include <fmt/format.h>
#include <iostream>
#include <map>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llmctl::cli {

namespace {

void out(std::string_view s) { write_stdout(s); }

// One followed log: its absolute position counts bytes since the log began, rotations included.
struct Followed {
    std::string name, path;
    Fd fd;
    ino_t ino = 0;
    std::uint64_t abs = 0;
    std::string partial; // with prefixes: the unfinished last line
};

// Emits `data` raw, or line by line with a "name | " prefix (complete lines only).
void emit(Followed& f, const std::string& data, std::size_t width, bool prefix) {
    if (!prefix) return out(data);
    f.partial += data;
    std::size_t start = 0, nl;
    std::string buf;
    while ((nl = f.partial.find('\n', start)) != std::string::npos) {
        buf += fmt::format("{:<{}} | ", f.name, width);
        buf.append(f.partial, start, nl - start + 1);
        start = nl + 1;
    }
    f.partial.erase(0, start);
    out(buf);
}

void open_followed(Followed& f, bool from_start) {
    f.fd = Fd(::open(f.path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat sb {};
    if (!f.fd.valid() || ::fstat(f.fd.get(), &sb) != 0) return;
    f.ino = sb.st_ino;
    auto o = read_offset(f.path);
    f.abs = o.removed + (from_start ? 0 : static_cast<std::uint64_t>(sb.st_size));
}

// Reads what is new in one log. Seqlock on the offset sidecar: data read while a rotation ran
// is discarded and read again at the shifted position.
void poll_followed(Followed& f, std::size_t width, bool prefix) {
    struct stat named {};
    if (::stat(f.path.c_str(), &named) != 0) return; // gone for now (rotated by hand, deleted)
    if (!f.fd.valid() || named.st_ino != f.ino) {
        open_followed(f, true); // a new file: all of it is new output
        f.abs = read_offset(f.path).removed;
        if (!f.fd.valid()) return;
    }
    std::string buf;
    for (int tries = 0; tries < 100; ++tries) {
        LogOffset o1 = read_offset(f.path);
        if (o1.pending) return; // a rotation is moving the head: next round
        if (f.abs < o1.removed) {
            // A rotation moved bytes we had not read yet into NAME.log.1 (.2 …): each old file
            // holds exactly the bytes one rotation removed, so they chain back from `removed`.
            std::uint64_t base = o1.removed;
            bool found = false;
            for (int k = 1; k <= 1000 && !found; ++k) {
                std::string old = f.path + "." + std::to_string(k);
                Fd ofd(::open(old.c_str(), O_RDONLY | O_CLOEXEC));
                struct stat ob {};
                if (!ofd.valid() || ::fstat(ofd.get(), &ob) != 0) break;
                auto osize = static_cast<std::uint64_t>(ob.st_size);
                std::uint64_t start = base >= osize ? base - osize : 0;
                if (f.abs >= start) {
                    found = true;
                    buf.resize(static_cast<std::size_t>(std::min<std::uint64_t>(osize - (f.abs - start), 1 << 20)));
                    ssize_t n = ::pread(ofd.get(), buf.data(), buf.size(), static_cast<off_t>(f.abs - start));
                    if (n < 0) return;
                    buf.resize(static_cast<std::size_t>(n));
                }
                base = start;
            }
            if (!(read_offset(f.path) == o1)) continue; // rotated meanwhile: read again
            if (!found || buf.empty()) {
                // Older than the oldest kept file (beyond log_keep: dropped by design): go on
                // from the oldest byte still kept.
                f.abs = found ? o1.removed : base;
                continue;
            }
            f.abs += buf.size();
            emit(f, buf, width, prefix);
            tries = 0;
            continue;
        }
        std::uint64_t pos = f.abs - o1.removed;
        struct stat sb {};
        if (::fstat(f.fd.get(), &sb) != 0) return;
        auto size = static_cast<std::uint64_t>(sb.st_size);
        if (size < pos) { // truncated by something other than llmctl: start over at its beginning
            f.abs = o1.removed;
            pos = 0;
        }
        if (size == pos) return;
        buf.resize(static_cast<std::size_t>(std::min<std::uint64_t>(size - pos, 1 << 20)));
        ssize_t n = ::pread(f.fd.get(), buf.data(), buf.size(), static_cast<off_t>(pos));
        if (n <= 0) return;
        buf.resize(static_cast<std::size_t>(n));
        if (!(read_offset(f.path) == o1)) continue; // rotated meanwhile: read again
        f.abs += static_cast<std::uint64_t>(n);
        emit(f, buf, width, prefix);
        tries = 0;
    }
}

// Log files in the state dir's logs/, as server names.
std::vector<std::string> log_names(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir((dir + "/logs").c_str())) {
        while (auto* e = ::readdir(d)) {
            std::string f = e->d_name;
            if (f.size() > 4 && f.compare(f.size() - 4, 4, ".log") == 0) names.push_back(f.substr(0, f.size() - 4));
        }
        ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
}

bool exists(const std::string& path) {
    struct stat sb {};
    return ::stat(path.c_str(), &sb) == 0;
}

// Follows until SIGINT (130) or a closed stdout (0).
int follow(std::vector<Followed>& files, const std::string& dir, bool all) {
    catch_sigint();
    for (;;) {
        if (all) { // servers started meanwhile: their whole log is new output
            for (auto& n : log_names(dir))
                if (std::none_of(files.begin(), files.end(), [&](auto& f) { return f.name == n; })) {
                    Followed f;
                    f.name = n;
                    f.path = log_path(dir, n);
                    open_followed(f, true);
                    files.push_back(std::move(f));
                }
        }
        std::size_t width = 0;
        for (auto& f : files) width = std::max(width, f.name.size());
        for (auto& f : files) poll_followed(f, width, all);
        // Sleep 100 ms, waking for a closed pipe on stdout (POLLERR) or SIGINT.
        pollfd p{STDOUT_FILENO, 0, 0};
        ::poll(&p, 1, 100);
        if (sigint_received()) return static_cast<int>(Exit::interrupted);
        if (p.revents & (POLLERR | POLLHUP)) return 0;
    }
}

// Options that cannot be combined: the second would be silently dropped (or the first).
void reject_conflicts(const CLI::App& app) {
    static const std::pair<const char*, const char*> k_conflicts[] = {
        {"--path", "--lines"}, {"--path", "--follow"}, {"--path", "--rotate"}, {"--rotate", "--lines"},
        {"--rotate", "--follow"}, {"--all", "--path"},   {"--all", "--rotate"},
    };
    auto shown = [&](const char* flag) { return app.get_option(flag)->get_name(false, true); }; // "-n,--lines"
    for (auto [a, b] : k_conflicts)
        if (app.count(a) > 0 && app.count(b) > 0)
            throw Error(Exit::usage, fmt::format("{} and {} cannot be used together", shown(a), shown(b)),
                        "--path prints the path, --rotate rotates, -n/-f print lines: one at a time (see llmctl logs --help)");
}

// The config for logs: a broken one (being edited) does not stop anyone reading logs; names
// are then checked against the log files only, and --rotate uses the built-in log_keep.
Config logs_config(const Globals& g, bool rotate) {
    const Defaults builtin;
    return config_for_cleanup(g, rotate ? fmt::format("--rotate uses the built-in log_keep = {} instead", builtin.log_keep)
                                        : std::string("only the log files are read"));
}

// Refuses a name that is neither configured nor has a log (exit 4, with "did you mean").
void check_name(const Config& cfg, const std::string& dir, const std::string& name) {
    if (!valid_model_name(name)) throw Error(Exit::usage, fmt::format("bad server name \"{}\"", name));
    if (cfg.find(name) || exists(log_path(dir, name))) return;
    auto known = cfg.model_names();
    for (auto& n : log_names(dir)) known.push_back(n);
    throw Error(Exit::unknown, fmt::format("no server or model \"{}\"{}", name, did_you_mean_suffix(name, known)),
                "list them with: llmctl config show --names; llmctl ps -a");
}

} // namespace

std::function<int()> setup_logs(CLI::App& app, Globals& g) {
    struct Opts {
        std::string name;
        std::size_t lines = 50;
        bool follow = false, path = false, all = false, rotate = false;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("name", o->name, "Server or model name")->type_name("NAME");
    app.add_option("-n,--lines", o->lines, "Show the last N lines (default 50)")->type_name("N")->check(number_between(0, HUGE_VAL));
    app.add_flag("-f,--follow", o->follow, "Keep printing new output (across rotation and truncation) until Ctrl-C");
    app.add_flag("--path", o->path, "Print the log file's path");
    app.add_flag("--all", o->all, "Every server's log, lines prefixed with \"name | \"");
    app.add_flag("--rotate", o->rotate, "Rotate the log now (as reap does above log_max_size); -v says how");
    app.footer("Logs stay readable after a server stopped or failed. Output is passed through byte for byte.\n"
               "--path and --rotate stand alone; -n and -f go with a NAME or --all.\n"
               "Examples:\n  llmctl logs echo\n  llmctl logs -f echo\n  llmctl logs --all -f\n  less \"$(llmctl logs --path echo)\"\n");
    return [o, &app, &g]() -> int {
        reject_conflicts(app);
        if (o->all == !o->name.empty()) throw Error(Exit::usage, "give a server name or --all (not both)", "llmctl logs NAME | --all");
        std::string dir = resolve_state_dir(g.state_dir);
        Config cfg = logs_config(g, o->rotate);
        if (!o->all) check_name(cfg, dir, o->name);
        std::vector<std::string> names = o->all ? log_names(dir) : std::vector<std::string>{o->name};
        if (o->path) {
            std::cout << log_path(dir, o->name) << "\n";
            return 0;
        }
        if (o->rotate) {
            std::string path = log_path(dir, o->name);
            const ModelConfig* m = cfg.find(o->name);
            ModelConfig d = m ? *m : model_from_defaults(cfg.defaults, o->name);
            auto r = rotate_log(path, d.log_max_size, d.log_keep, true);
            if (g.verbosity >= 0) {
                if (!r.rotated) std::cerr << fmt::format("llmctl: {}: nothing to rotate\n", path);
                else if (r.collapsed || g.verbosity < 1)
                    std::cerr << fmt::format("llmctl: rotated {}: {} moved to {}.1\n", path, format_size(r.removed), o->name + ".log");
                else
                    std::cerr << fmt::format("llmctl: rotated {}: {} moved to {}.1 by copy and truncate (COLLAPSE_RANGE unavailable: {}); "
                                             "output written during the copy may be lost\n",
                                             path, format_size(r.removed), o->name + ".log", r.fallback_reason);
            }
            return 0;
        }
        std::vector<Followed> files;
        std::size_t width = 0;
        for (auto& n : names) width = std::max(width, n.size());
        try {
            for (auto& n : names) {
                Followed f;
                f.name = n;
                f.path = log_path(dir, n);
                // Seqlock again: the tail and the offset must come from between two rotations.
                LogOffset before;
                std::uint64_t end = 0;
                std::optional<std::string> text;
                for (int tries = 0; tries < 1000; ++tries) {
                    before = read_offset(f.path);
                    if (before.pending) {
                        ::usleep(10'000);
                        continue;
                    }
                    text = tail_lines(f.path, o->lines, &end);
                    if (read_offset(f.path) == before) break;
                }
                if (!text && !o->all && g.verbosity >= 0) std::cerr << fmt::format("llmctl: {} has no log yet ({})\n", n, f.path);
                if (text) {
                    emit(f, *text, width, o->all);
                    if (o->all && !f.partial.empty()) emit(f, "\n", width, true), f.partial.clear();
                }
                if (o->follow) {
                    open_followed(f, true);
                    f.abs = before.removed + end;
                    f.partial.clear();
                    files.push_back(std::move(f));
                }
            }
            if (!o->follow) return 0;
            return follow(files, dir, o->all);
        } catch (const StdoutClosed&) {
            return 0;
        }
    };
}

} // namespace llmctl::cli
