#pragma once
// The table of subcommands: it feeds --help, "did you mean …?" and completions.

#include "llmctl/config.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/units.hpp"

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace llmctl::cli {

// Options every subcommand sees.
struct Globals {
    std::string config_path;
    std::string state_dir;
    int verbosity = 0; // -1 quiet, 0 normal, 1+ verbose
    // The words after the first `--` (set when there was one): start's and exec's CMD, more of
    // chat's prompt. Split off before CLI11 parses, so no other word can ever become a command.
    std::optional<std::vector<std::string>> after_dashdash;
};

// What a command does with words after `--`.
enum class AfterDashdash {
    nothing, // a usage error
    command, // CMD ARGS... (start: an ad-hoc server; exec: required)
    prompt,  // more prompt words (chat), even ones that start with '-'
};

// One subcommand: `setup` declares its options on `app` and returns the handler to run.
struct Command {
    const char* name;
    const char* summary;
    std::function<std::function<int()>(CLI::App& app, Globals& g)> setup;
    AfterDashdash after_dashdash = AfterDashdash::nothing;
    // Set for a command whose own exit statuses pass through (exec: CMD's): every failure of
    // llmctl itself, usage errors included, exits with this instead (125, as timeout(1) does).
    std::optional<Exit> own_failure = std::nullopt;
    // Not for people: left out of --help, did-you-mean and completions (monitor-exit).
    bool hidden = false;
};

const std::vector<Command>& command_table();

// A CLI11 check: a number from lo to hi (hi may be infinity), with a plain message
// ("must be 0 or more, not -3", "takes a number, not \"x\"").
CLI::Validator number_between(double lo, double hi);

// The same for a whole number ("takes a whole number, not \"1.5\"").
CLI::Validator integer_between(long long lo, long long hi);

// Parses a duration option's value; a bad one is a usage error naming the flag (exit 2).
Millis duration_flag(const std::string& flag, const std::string& value);

// A size flag's value ("64MiB"); a bare K/M/G unit or a bad value is Error(usage) naming the flag.
std::uint64_t size_flag(const std::string& flag, const std::string& value);

// The config for a clean-up command (stop, reap, logs): a broken config is a warning on stderr
// ("llmctl: warning: config …; `skipped`"), not an error, and the built-in [defaults] are used.
Config config_for_cleanup(const Globals& g, const std::string& skipped);

// Per-command setup functions (one file each).
std::function<int()> setup_config(CLI::App& app, Globals& g);
std::function<int()> setup_state(CLI::App& app, Globals& g);
std::function<int()> setup_ps(CLI::App& app, Globals& g);
std::function<int()> setup_start(CLI::App& app, Globals& g);
std::function<int()> setup_stop(CLI::App& app, Globals& g);
std::function<int()> setup_restart(CLI::App& app, Globals& g);
std::function<int()> setup_reap(CLI::App& app, Globals& g);
std::function<int()> setup_apply(CLI::App& app, Globals& g);
std::function<int()> setup_logs(CLI::App& app, Globals& g);
std::function<int()> setup_events(CLI::App& app, Globals& g);
std::function<int()> setup_metrics(CLI::App& app, Globals& g);
std::function<int()> setup_top(CLI::App& app, Globals& g);
std::function<int()> setup_chat(CLI::App& app, Globals& g);
std::function<int()> setup_exec(CLI::App& app, Globals& g);
std::function<int()> setup_serve(CLI::App& app, Globals& g);
std::function<int()> setup_monitor_exit(CLI::App& app, Globals& g);
std::function<int()> setup_probe(CLI::App& app, Globals& g);

} // namespace llmctl::cli
