// llmctl: a process manager for local LLM servers. Parses arguments, runs one subcommand,
// maps errors to the documented exit codes.

#include "commands.hpp"
#include "output.hpp"
#include "usage.hpp"

#include "llmctl/errors.hpp"

#include <algorithm>
#include <csignal>
#include <iostream>
#include <string_view>

using namespace llmctl;

namespace {

// The exit status of one of llmctl's own failures: the command's own_failure when it has one
// (exec's 125, so that a script can tell them from CMD's), else `rc`.
int own_failure(const CLI::App& app, int rc) {
    for (const auto& c : cli::command_table())
        if (c.own_failure && app.got_subcommand(c.name)) return static_cast<int>(*c.own_failure);
    return rc;
}

int usage_exit(const CLI::App& app, const cli::UsageError& u) { return own_failure(app, cli::print_usage_error(u)); }

// --help after a mistyped command word ("llmctl strat --help") is that mistake, not a request
// for the top-level help.
bool help_for_unknown_command(const CLI::App& app, const CLI::ParseError& e) {
    return dynamic_cast<const CLI::CallForHelp*>(&e) && app.get_subcommands().empty() &&
           std::ranges::any_of(app.remaining(), [](const std::string& w) { return !w.starts_with("-"); });
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
               "6 timed out, 7 state file of a newer llmctl, 130 interrupted. See llmctl(1).");
    cli::Globals g;
    app.add_option("--config", g.config_path, "Config file (default: $LLMCTL_CONFIG, ~/.config/llmctl/config.toml, built-in)")
        ->type_name("PATH");
    app.add_option("--state-dir", g.state_dir, "State dir (default: $LLMCTL_HOME, ~/.local/state/llmctl)")->type_name("DIR");
    bool verbose = false, quiet = false;
    auto* verbose_flag = app.add_flag("-v,--verbose", verbose, "More detail on stderr");
    verbose_flag->excludes(app.add_flag("-q,--quiet", quiet, "No progress or notes on stderr"));

    // Only `--` introduces words that are not llmctl's (start's and exec's CMD, chat's prompt):
    // CLI11 never sees them, so a stray word before `--` is always a usage error.
    int parsed_argc = argc;
    if (auto dd = std::find(argv + 1, argv + argc, std::string_view("--")); dd != argv + argc) {
        parsed_argc = static_cast<int>(dd - argv);
        g.after_dashdash.emplace(dd + 1, argv + argc);
    }

    std::function<int()> handler;
    for (const auto& c : cli::command_table()) {
        auto* sub = app.add_subcommand(c.name, c.summary);
        if (c.hidden) sub->group("");
        auto h = c.setup(*sub, g);
        // Global options may follow the (sub)command.
        sub->fallthrough();
        for (auto* nested : sub->get_subcommands([](CLI::App*) { return true; })) nested->fallthrough();
        cli::describe_after_dashdash(*sub, c.after_dashdash);
        sub->callback([&handler, h] { handler = h; });
    }
    try {
        app.parse(parsed_argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0 && !help_for_unknown_command(app, e)) return app.exit(e); // --help, --version
        return usage_exit(app, cli::explain_parse_error(app, e));
    }
    if (auto u = cli::check_after_dashdash(app, g)) return usage_exit(app, *u);
    g.verbosity = quiet ? -1 : verbose ? 1 : 0;
    try {
        return handler ? handler() : 0;
    } catch (const Error& e) {
        cli::print_error(e);
        return own_failure(app, static_cast<int>(e.code()));
    } catch (const std::exception& e) {
        cli::print_error(e.what());
        return own_failure(app, static_cast<int>(Exit::failure));
    }
}
