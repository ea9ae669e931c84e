// llmctl logs: tail, follow (across rotation and truncation) and rotate server logs.
// Takes no lock: it reads files, and follows rotations through the NAME.log.offset sidecar.

#include "commands.hpp"
#include "output.hpp"

#include "llmctl/config.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/log_follow.hpp"
#include "llmctl/log_stream.hpp"
#include "llmctl/logfile.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/strings.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <iostream>
#include <map>
#include <sys/stat.h>
#include <unistd.h>

namespace llmctl::cli {

namespace {

void out(std::string_view s) { write_stdout(s); }

// Prints logs' output: raw, or (--all) line by line with a "NAME | " prefix aligned to `width`,
// complete lines only; each log's unfinished last line is held back until its newline comes.
class LogPrinter {
public:
    explicit LogPrinter(bool prefix) : prefix_(prefix) {}

    // Prints `data` of the log `name`.
    void print(const std::string& name, std::string_view data, std::size_t width) {
        if (!prefix_) return out(data);
        std::string& partial = partial_[name];
        partial += data;
        std::size_t start = 0, nl;
        std::string buf;
        while ((nl = partial.find('\n', start)) != std::string::npos) {
            buf += fmt::format("{:<{}} | ", name, width);
            buf.append(partial, start, nl - start + 1);
            start = nl + 1;
        }
        partial.erase(0, start);
        out(buf);
    }

    // --all: ends the log's unfinished last line with a newline of its own.
    void end_line(const std::string& name, std::size_t width) {
        if (prefix_ && !partial_[name].empty()) print(name, "\n", width);
    }

private:
    bool prefix_;
    std::map<std::string, std::string> partial_; // by log name
};

bool exists(const std::string& path) {
    struct stat sb {};
    return ::stat(path.c_str(), &sb) == 0;
}

// Follows until SIGINT (130) or a closed stdout (0).
int follow(std::vector<FollowedLog>& files, const std::string& dir, bool all, LogPrinter& printer) {
    auto print = [&](const std::string& name, std::string_view data, std::size_t width) { printer.print(name, data, width); };
    return follow_logs(files, dir, all, STDOUT_FILENO, print) == FollowEnd::interrupted ? static_cast<int>(Exit::interrupted) : 0;
}

// Options that cannot be combined: the second would be silently dropped (or the first).
void reject_conflicts(const CLI::App& app) {
    static const std::pair<const char*, const char*> k_conflicts[] = {
        {"--path", "--lines"},    {"--path", "--follow"}, {"--path", "--rotate"}, {"--rotate", "--lines"},
        {"--rotate", "--follow"}, {"--all", "--path"},    {"--all", "--rotate"},
    };
    auto shown = [&](const char* flag) { // "-n/--lines"
        std::string names = app.get_option(flag)->get_name(false, true);
        std::replace(names.begin(), names.end(), ',', '/');
        return names;
    };
    for (auto [a, b] : k_conflicts)
        if (app.count(a) > 0 && app.count(b) > 0)
            throw Error(Exit::usage, fmt::format("{} and {} cannot be used together", shown(a), shown(b)),
                        "--path and --rotate take one NAME and no other option; -n and -f go with a NAME or --all");
}

// The config for logs: a broken one (being edited) does not stop anyone reading logs; names
// are then checked against the log files only, and --rotate uses the built-in log_keep.
Config logs_config(const Globals& g, bool rotate) {
    const Defaults builtin;
    return config_for_cleanup(g, rotate ? fmt::format("--rotate uses the built-in log_keep = {} instead", builtin.log_keep)
                                        : std::string("only the log files are read"));
}

// Refuses a name that is neither configured nor has a log (exit 4, with "did you mean"). The
// gateways' access log, @serve, is a name too.
void check_name(const Config& cfg, const std::string& dir, const std::string& name) {
    if (!valid_model_name(name) && name != k_gateway_log_name)
        throw Error(Exit::usage, fmt::format("bad server name \"{}\"", name), "the gateways' access log is @serve");
    if (cfg.find(name) || exists(log_path(dir, name))) return;
    auto known = cfg.model_names();
    for (auto& n : logged_names(dir)) known.push_back(n);
    throw Error(Exit::unknown, fmt::format("no server or model \"{}\"{}", name, did_you_mean_suffix(name, known)),
                "list them with: llmctl config show --names; llmctl ps -a");
}

// logs --rotate NAME: a warning when the full filesystem cost kept output (exit 0 all the
// same: space was freed, which is what rotating is for).
int rotate_now(const Config& cfg, const std::string& dir, const std::string& name, int verbosity) {
    std::string path = log_path(dir, name);
    const ModelConfig* m = cfg.find(name);
    ModelConfig d = m ? *m : model_from_defaults(cfg.defaults, name);
    auto r = rotate_log(path, d.log_max_size, d.log_keep, true);
    std::string text = describe_rotation(r, path, verbosity >= 1);
    if (r.lost_kept_output())
        std::cerr << "llmctl: warning: " << text << "\n";
    else if (verbosity >= 0)
        std::cerr << "llmctl: " << text << "\n";
    return 0;
}

// Prints the last `lines` of each log (grouped by server, prefixed with --all) and returns
// them as followers positioned just after what was printed.
std::vector<FollowedLog> print_tails(const std::vector<std::string>& names, const std::string& dir, std::size_t lines, LogPrinter& printer,
                                     bool all, int verbosity) {
    std::vector<FollowedLog> files;
    std::size_t width = 0;
    for (auto& n : names) width = std::max(width, n.size());
    for (auto& n : names) {
        FollowedLog f(n, log_path(dir, n));
        if (auto tail = tail_log(f.path, lines)) {
            printer.print(n, tail->text, width);
            printer.end_line(n, width);
            f.abs = tail->end;
            f.ino = tail->ino;
        } else if (!all && verbosity >= 0) {
            std::cerr << fmt::format("llmctl: {} has no log yet ({})\n", n, f.path);
        }
        files.push_back(std::move(f));
    }
    return files;
}

} // namespace

std::function<int()> setup_logs(CLI::App& app, Globals& g) {
    struct Opts {
        std::string name;
        std::size_t lines = 50;
        bool follow = false, path = false, all = false, rotate = false;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("name", o->name, "Server or model name, or @serve (the access log of llmctl serve)")->type_name("NAME");
    app.add_option("-n,--lines", o->lines, "Show the last N lines (default 50), across rotated files")
        ->type_name("N")
        ->check(number_between(0, HUGE_VAL));
    app.add_flag("-f,--follow", o->follow, "Keep printing new output (across rotation and truncation) until Ctrl-C");
    app.add_flag("--path", o->path, "Print the log file's path");
    app.add_flag("--all", o->all, "Every server's log, lines prefixed with \"name | \" (grouped by server, then as they come)");
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
        if (o->path) {
            std::cout << log_path(dir, o->name) << "\n";
            return 0;
        }
        if (o->rotate) return rotate_now(cfg, dir, o->name, g.verbosity);
        try {
            LogPrinter printer(o->all);
            auto files =
                print_tails(o->all ? logged_names(dir) : std::vector<std::string>{o->name}, dir, o->lines, printer, o->all, g.verbosity);
            return o->follow ? follow(files, dir, o->all, printer) : 0;
        } catch (const StdoutClosed&) {
            return 0;
        }
    };
}

} // namespace llmctl::cli
