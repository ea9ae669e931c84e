#pragma once
// Usage errors in llmctl's voice: every CLI11 parse error becomes "llmctl: error: <what>, naming
// the command and the word" plus a hint, and exit 2.

#include "commands.hpp"

#include <CLI/CLI.hpp>
#include <string>

namespace llmctl::cli {

struct UsageError {
    std::string what; // "start: --port must be from 1 to 65535, not 0"
    std::string hint; // "llmctl start --help lists the options, with examples"
};

// Says what went wrong in `e`, thrown by `root.parse`, in llmctl's words: a mistyped command or
// option (with "did you mean"), a stray word, a missing or bad value, two options that exclude
// each other. `root` is the parsed app: its remaining() words name what was not understood.
UsageError explain_parse_error(const CLI::App& root, const CLI::ParseError& e);

// Words after `--` that the parsed command does not take, or CMD missing after `--`: the error,
// or nothing when the words are fine.
std::optional<UsageError> check_after_dashdash(const CLI::App& root, const Globals& g);

// Prints the error and its hint on stderr; returns the usage exit code (2).
int print_usage_error(const UsageError& u);

// Adds what follows `--` to a command's usage line ("Usage: llmctl start [OPTIONS] NAME
// [-- CMD ARGS...]"): CLI11 never sees those words, so it cannot describe them.
void describe_after_dashdash(CLI::App& command, AfterDashdash kind);

// "config show" for `llmctl config show ...`: the subcommands parsed, space-separated ("" if none).
std::string parsed_command_name(const CLI::App& root);

} // namespace llmctl::cli
