#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mock {

using Duration = std::chrono::nanoseconds;

// Everything the command line configures; the defaults describe a well-behaved echo server.
struct Options {
    std::string host = "127.0.0.1";
    int port = -1; // required; 0 asks the kernel for a free port
    bool reuseport = false;
    std::string model_name = "echo";
    std::optional<std::string> reply;
    bool echo_history = false;          // echo every user message of the request, joined by " | "
    std::optional<std::string> fail_on; // answer HTTP 500 when the last user message contains this
    std::optional<std::uint64_t> reply_tokens;
    double tokens_per_second = 0; // 0 = as fast as possible
    bool no_usage = false;        // a stream ends without its usage chunk (as servers that ignore stream_options)
    bool stamp_tokens = false;    // streamed token i is "<CLOCK_MONOTONIC ns at send> " (benchmarks)
    Duration startup_delay{0};
    Duration health_delay{0};  // each GET /health answers only after this (a wedged server)
    std::string loading_until; // answer 503 until this file exists (a test holds the load open)
    std::string hold_until;    // a stream pauses after its first token until this file exists
    bool stderr_only = false;
    std::string request_log;       // empty = disabled
    std::string rate_limit_once;   // exists: the next chat or completion gets 429, Retry-After: 1 (the file goes)
    std::string tls_cert, tls_key; // both set: serve HTTPS (TLS in front of the same handlers)
    std::string tls_client_ca;     // set: require a client certificate signed by this CA
    bool crash_at_start = false;
    bool port_taken = false;
    std::optional<std::uint64_t> crash_mid_stream;
    std::optional<std::uint64_t> stall_after;
    bool ignore_sigterm = false;
    bool abort_on_term_in_flight = false;
    int fork_children = 0;
    bool escape_child = false;
    std::uint64_t log_spam = 0;
    std::uint64_t hold_memory = 0; // bytes allocated and touched before binding, held until exit
    std::optional<Duration> exit_after;
    // Supervision faults: the signal (default SIGSEGV) raised after a time, or when the Nth
    // generation request arrives; and a wedged server (health 200, generations never answered).
    std::optional<Duration> crash_after;
    std::optional<std::uint64_t> crash_after_requests;
    int crash_signal = 11;
    bool wedge = false;
    std::string wedge_once; // wedged when this file exists at start (it is deleted: the next run is healthy)
};

// Outcome of parsing: options to run with, or an exit code plus the text to print.
struct ParseResult {
    std::optional<Options> options;
    int exit_code = 0;
    std::string message; // stdout when exit_code == 0 (--help), stderr otherwise
};

// Parses argv; never exits, so the caller decides how to report.
ParseResult parse_options(int argc, char** argv);

// "500ms", "2s", "1.5m", "1h", or a plain number of seconds; nullopt if malformed.
std::optional<Duration> parse_duration(std::string_view text);

// Bytes with optional binary suffix: K/KB/KiB, M/MB/MiB, G/GB/GiB; nullopt if malformed.
std::optional<std::uint64_t> parse_size(std::string_view text);

// The --help text.
std::string usage_text();

} // namespace mock
