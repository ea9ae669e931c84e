// llmctl: a process manager for local LLM servers. Parses arguments, runs one subcommand,
// maps errors to the documented exit codes.

#include "commands.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/strings.hpp"

#include <algorithm>
#include <csignal>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <iostream>

using namespace llmctl;

namespace {

int report(const Error& e) {
    std::cerr << "llmctl: error: " << e.what() << "\n";
    if (!e.hint().empty()) std::cerr << "hint: " << e.hint() << "\n";
    return static_cast<int>(e.code());
}

// A parse error in llmctl's own format, naming the command and, for a mistyped option, the
// closest one it has ("did you mean"). Exit 2.
int usage_error(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
    const CLI::App* sub = app.get_subcommands().empty() ? nullptr : app.get_subcommands().front();
    std::vector<std::string> known;
    for (const CLI::App* a : {&app, sub})
        if (a)
            for (const CLI::Option* o : a->get_options()) {
                for (auto& l : o->get_lnames()) known.push_back("--" + l);
                for (auto& s : o->get_snames()) known.push_back("-" + s);
            }
    std::string msg = e.what();
    // CLI11 says "name is required" / "A subcommand is required": name the command instead.
    if (const std::string suffix = " is required"; sub && msg.size() > suffix.size() && msg.ends_with(suffix)) {
        std::string what = msg.substr(0, msg.size() - suffix.size());
        if (what == "A subcommand") {
            std::vector<std::string> subs;
            for (const CLI::App* s : sub->get_subcommands([](const CLI::App*) { return true; })) subs.push_back(s->get_name());
            msg = fmt::format("{} needs a subcommand: {}", sub->get_name(), fmt::join(subs, " or "));
        } else if (what.find(' ') == std::string::npos) {
            for (auto& c : what) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            msg = fmt::format("{} needs a {}", sub->get_name(), what);
        }
    }
    if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
        for (int i = 1; i < argc; ++i) {
            std::string w = argv[i];
            if (w == "--") break;
            if (w.size() < 2 || w[0] != '-' || std::find(known.begin(), known.end(), w.substr(0, w.find('='))) != known.end()) continue;
            msg = fmt::format("unknown option {}{}{}", w, sub ? " for " + sub->get_name() : std::string(), did_you_mean_suffix(w, known));
            break;
        }
    }
    std::cerr << "llmctl: error: " << msg << "\n";
    std::cerr << "hint: llmctl " << (sub ? sub->get_name() + " " : std::string()) << "--help lists the options, with examples\n";
    return static_cast<int>(Exit::usage);
}

} // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    CLI::App app{"llmctl: start, stop and talk to local LLM servers, without duplicates or zombies", "llmctl"};
    app.set_version_flag("--version", std::string("llmctl ") + LLMCTL_VERSION);
    app.require_subcommand(1);
    app.footer("Examples:\n"
               "  llmctl chat echo \"hello\"           # the built-in mock model: starts it, then asks\n"
               "  url=$(llmctl start phi4)           # a configured model (llmctl.toml(5)); prints its URL\n"
               "  llmctl ps                          # what runs; llmctl stop --all stops it\n"
               "  * * * * * llmctl reap -q           # crontab: clean up dead, orphaned and idle servers\n"
               "Run llmctl COMMAND --help for each command's options and examples.\n"
               "Exit codes: 0 ok, 1 failure, 2 usage, 3 config error, 4 unknown model, 5 server failed,\n"
               "6 timed out, 130 interrupted. See llmctl(1).");
    cli::Globals g;
    app.add_option("--config", g.config_path, "Config file (default: $LLMCTL_CONFIG, ~/.config/llmctl/config.toml, built-in)")->type_name("PATH");
    app.add_option("--state-dir", g.state_dir, "State dir (default: $LLMCTL_HOME, ~/.local/state/llmctl)")->type_name("DIR");
    bool verbose = false, quiet = false;
    app.add_flag("-v,--verbose", verbose, "More detail on stderr");
    app.add_flag("-q,--quiet", quiet, "No progress or notes on stderr");

    std::function<int()> handler;
    std::vector<std::string> names;
    for (const auto& c : cli::command_table()) {
        auto* sub = app.add_subcommand(c.name, c.summary);
        sub->fallthrough(); // global options may follow the subcommand
        auto h = c.setup(*sub, g);
        sub->callback([&handler, h] { handler = h; });
        names.push_back(c.name);
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // An unknown first word is most likely a mistyped subcommand.
        if (app.get_subcommands().empty() && argc > 1 && argv[1][0] != '-' && !dynamic_cast<const CLI::CallForHelp*>(&e) &&
            !dynamic_cast<const CLI::CallForVersion*>(&e)) {
            std::string word = argv[1];
            std::cerr << fmt::format("llmctl: error: unknown command \"{}\"{}\n", word, did_you_mean_suffix(word, names));
            std::cerr << "hint: run llmctl --help for the list of commands\n";
            return static_cast<int>(Exit::usage);
        }
        if (e.get_exit_code() == 0) return app.exit(e); // --help, --version
        int rc = usage_error(app, e, argc, argv);
        // exec's own failures are 125 (like timeout(1)), so a script can tell them from CMD's.
        return app.got_subcommand("exec") ? 125 : rc;
    }
    g.verbosity = quiet ? -1 : verbose ? 1 : 0;
    try {
        return handler ? handler() : 0;
    } catch (const Error& e) {
        return report(e);
    } catch (const std::exception& e) {
        std::cerr << "llmctl: error: " << e.what() << "\n";
        return static_cast<int>(Exit::failure);
    }
}
