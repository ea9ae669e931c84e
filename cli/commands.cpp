#include "commands.hpp"

#include "llmctl/errors.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>
#include <iostream>

namespace llmctl::cli {

const std::vector<Command>& command_table() {
    static const std::vector<Command> table = {
        {"config", "Validate or show the configuration", setup_config},
        {"start", "Start a server (idempotent; prints its URL)", setup_start, AfterDashdash::command},
        {"stop", "Stop servers: SIGTERM, then SIGKILL after stop_timeout", setup_stop},
        {"restart", "Stop, then start a server", setup_restart},
        {"apply", "Restart changed models, stop removed ones, start preload ones (--dry-run: the plan)", setup_apply},
        {"ps", "List servers: NAME STATUS PID PORT UPTIME IDLE RSS SLOTS URL (no lock, no writes)", setup_ps},
        {"chat", "Talk to a model (streaming; per-model slots)", setup_chat, AfterDashdash::prompt},
        {"exec", "Run a command against a server, started for it if needed (CI)", setup_exec, AfterDashdash::command, Exit::exec_failed},
        {"serve", "Serve every model on one OpenAI endpoint, started on demand, with shared slots", setup_serve},
        {"logs", "Show or follow a server's log (-f follows across rotation)", setup_logs},
        {"events", "Show or follow what happened to the servers: spawned, ready, evicted, restarted... (no lock)", setup_events},
        {"top", "Full-screen view: servers, slots, memory, tokens/s, pools, gateways, events (no lock)", setup_top},
        {"metrics", "Print Prometheus metrics from the state: servers, slots, pools, requests, tokens (no lock)", setup_metrics},
        {"reap", "Clean up dead, orphaned and idle servers and leaked chat slots (cron-safe)", setup_reap},
        {"state", "Create or upgrade the state file (takes the state lock)", setup_state},
        {"monitor-exit", "Record a server's exit (run by llmctl-monitor)", setup_monitor_exit, AfterDashdash::nothing, std::nullopt, true},
        {"probe", "Probe a server while it runs (run by llmctl-monitor)", setup_probe, AfterDashdash::nothing, std::nullopt, true},
    };
    return table;
}

CLI::Validator number_between(double lo, double hi) {
    return CLI::Validator(
        [lo, hi](std::string& text) -> std::string {
            char* end = nullptr;
            double v = std::strtod(text.c_str(), &end);
            if (text.empty() || *end != '\0' || std::isnan(v)) return fmt::format("takes a number, not \"{}\"", text);
            if (v < lo || v > hi)
                return std::isinf(hi) ? fmt::format("must be {} or more, not {}", lo, text)
                                      : fmt::format("must be from {} to {}, not {}", lo, hi, text);
            return {};
        },
        "");
}

CLI::Validator integer_between(long long lo, long long hi) {
    return CLI::Validator(
        [lo, hi](std::string& text) -> std::string {
            char* end = nullptr;
            errno = 0;
            long long v = std::strtoll(text.c_str(), &end, 10);
            if (text.empty() || *end != '\0') return fmt::format("takes a whole number, not \"{}\"", text);
            if (errno == ERANGE || v < lo || v > hi) return fmt::format("must be from {} to {}, not {}", lo, hi, text);
            return {};
        },
        "");
}

Config config_for_cleanup(const Globals& g, const std::string& skipped) {
    CleanupConfig c = load_config_for_cleanup(g.config_path);
    if (!c.ok())
        std::cerr << fmt::format("llmctl: warning: the config cannot be used ({}); {}\n"
                                 "hint: llmctl config check shows the error; fix it and run the command again\n",
                                 c.problem, skipped);
    return c.config;
}

Millis duration_flag(const std::string& flag, const std::string& value) {
    auto d = parse_duration(value);
    if (!d) throw Error(Exit::usage, fmt::format("{}: bad duration \"{}\"", flag, value), "write it like \"90s\" or \"5m\"");
    return *d;
}

std::uint64_t size_flag(const std::string& flag, const std::string& value) {
    if (size_unit_is_ambiguous(value))
        throw Error(Exit::usage, fmt::format("{} \"{}\": is that powers of 1024 or of 1000?", flag, value),
                    fmt::format("write {}iB (binary: KiB MiB GiB TiB) or {}B (decimal: kB MB GB TB)", value, value));
    auto v = parse_size(value);
    if (!v) throw Error(Exit::usage, fmt::format("{}: bad size \"{}\"", flag, value), "write it like 512KiB, 64MiB or 1GiB");
    return *v;
}

} // namespace llmctl::cli
