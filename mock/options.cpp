#include "options.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>

namespace mock {
namespace {

constexpr std::string_view k_program = "llmctl-mock-server";

std::optional<double> parse_number(std::string_view text) {
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value)) {
        return std::nullopt;
    }
    return value;
}

std::optional<std::uint64_t> parse_count(std::string_view text) {
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// "SEGV", "SIGSEGV" or "11" (up to 64); nullopt otherwise.
std::optional<int> parse_signal(std::string_view text) {
    if (auto n = parse_count(text)) return *n >= 1 && *n <= 64 ? std::optional<int>(static_cast<int>(*n)) : std::nullopt;
    if (text.starts_with("SIG")) text.remove_prefix(3);
    for (int sig = 1; sig < 32; ++sig)
        if (const char* name = sigabbrev_np(sig); name && text == name) return sig;
    return std::nullopt;
}

// Splits "12.5ms" into ("12.5", "ms").
std::pair<std::string_view, std::string_view> split_suffix(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
        ++i;
    }
    return {text.substr(0, i), text.substr(i)};
}

std::string lowercase(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

struct UsageError {
    std::string message;
};

} // namespace

std::optional<Duration> parse_duration(std::string_view text) {
    auto [number, suffix] = split_suffix(text);
    auto value = parse_number(number);
    if (!value || *value < 0) return std::nullopt;
    double seconds_per_unit = 0;
    if (suffix.empty() || suffix == "s") {
        seconds_per_unit = 1;
    } else if (suffix == "ms") {
        seconds_per_unit = 1e-3;
    } else if (suffix == "m" || suffix == "min") {
        seconds_per_unit = 60;
    } else if (suffix == "h") {
        seconds_per_unit = 3600;
    } else {
        return std::nullopt;
    }
    double ns = *value * seconds_per_unit * 1e9;
    if (ns > static_cast<double>(std::numeric_limits<std::int64_t>::max() / 2)) return std::nullopt;
    return Duration(static_cast<std::int64_t>(ns));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    auto [number, suffix] = split_suffix(text);
    auto value = parse_count(number);
    if (!value) return std::nullopt;
    static const std::map<std::string, unsigned> shifts = {
        {"", 0}, {"b", 0}, {"k", 10}, {"kb", 10}, {"kib", 10}, {"m", 20}, {"mb", 20}, {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30},
    };
    auto it = shifts.find(lowercase(suffix));
    if (it == shifts.end()) return std::nullopt;
    if (*value > (std::numeric_limits<std::uint64_t>::max() >> it->second)) return std::nullopt;
    return *value << it->second;
}

std::string usage_text() {
    return R"(Usage: llmctl-mock-server --port P [options]

A deterministic OpenAI-compatible server: GET /health, GET /v1/models,
POST /v1/chat/completions and POST /v1/completions (streaming and not; also at
/completion, llama-server's path), POST /v1/embeddings (8 numbers per input from a hash of
its text; float or base64). Of llama-server's own routes: GET /slots (one slot, busy while a
completion runs; 503 then with ?fail_on_no_slot=1), GET /metrics (Prometheus text) and
POST /tokenize ({"content": TEXT} -> {"tokens": [...]}, a number per word). GET /empty
answers 204 No Content (an answer without a body, for relays' tests).
Replies echo the last user message (of a completion: its prompt).

Durations: 500ms, 2s, 1m, 1h or a plain number of seconds. Sizes: bytes or K/M/G (binary).

Serving:
  --host H                    address to bind (default 127.0.0.1)
  --port P                    port to bind (required; 0 = any free port)
  --reuseport                 also set SO_REUSEPORT on the listening socket
  --model-name NAME           model id reported by /v1/models (default echo)
  --reply TEXT                answer TEXT instead of echoing
  --reply-tokens N            answer "tok0 tok1 ... tok<N-1>"
  --echo-history              echo every user message of the request, joined by " | "
                              (shows which turns a client sends along)
  --tokens-per-second R       pace streamed tokens at R per second (0 = unpaced)
  --stamp-tokens              stream each token as "<CLOCK_MONOTONIC ns when sent> "
                              (for measuring relay latency; the count is unchanged)
  --stderr-only               write all log lines to stderr instead of stdout
  --request-log FILE          append one line per chat or completion request:
                              <start_ns> <end_ns> <pid> <stream 0|1> <last user message as JSON string>
                              (of a completion: its prompt)
  --tls-cert FILE             serve HTTPS with this PEM certificate (chain) ...
  --tls-key FILE              ... and its PEM private key
  --tls-client-ca FILE        require a client certificate signed by the CA in FILE

Faults:
  --startup-delay DUR         answer 503 "Loading model" for DUR after start
  --loading-until FILE        answer 503 "Loading model" until FILE exists
  --health-delay DUR          answer each GET /health only after DUR (a health endpoint that hangs)
  --hold-until FILE           pause each stream after its first token until FILE exists
  --crash-at-start            exit 3 before binding
  --port-taken                fail as if the port were in use (exit 1)
  --crash-mid-stream N        _exit(7) after sending N content tokens
  --fail-on TEXT              answer HTTP 500 when the last user message or prompt contains TEXT
  --rate-limit-once FILE      while FILE exists, answer the next chat or completion HTTP 429 with
                              Retry-After: 1, and remove FILE (a provider's rate limit)
  --stall-after N             stop sending after N content tokens (that connection only)
  --ignore-sigterm            ignore SIGTERM (children too)
  --no-usage                  end a stream without its usage chunk (as servers that ignore
                              stream_options.include_usage)
  --abort-on-term-in-flight   on SIGTERM abort() if a chat or completion is in flight
  --fork-children N           fork N sleeping children in the same process group
  --escape-child              fork one sleeping child that calls setsid()
  --log-spam BYTES            write BYTES of log lines after binding
  --exit-after DUR            exit 0 after DUR
  --crash-after DUR           raise --crash-signal after DUR
  --crash-after-requests N    raise --crash-signal when the Nth chat or completion request arrives
  --crash-signal SIG          the signal of the two above: a name (SEGV, SIGKILL) or number (default SEGV)
  --wedge                     answer /health, but never answer a chat or completion (a wedged server)
  --wedge-once FILE           --wedge if FILE exists at start, deleting it (so a restarted server is well)

Memory:
  --hold-memory SIZE          allocate and touch SIZE bytes before binding, held until exit
                              (a server whose measured footprint is not what it declared)

  --help                      show this help

Exit codes: 0 ok, 1 bind failure or memory not to be had, 2 usage, 3 crash at start, 7 crash mid-stream.
)";
}

ParseResult parse_options(int argc, char** argv) {
    Options o;
    bool help = false;

    auto need_count = [](std::string_view v) {
        auto n = parse_count(v);
        if (!n) throw UsageError{"expected a non-negative integer, got '" + std::string(v) + "'"};
        return *n;
    };
    auto need_duration = [](std::string_view v) {
        auto d = parse_duration(v);
        if (!d) throw UsageError{"expected a duration like 500ms, 2s or 1m, got '" + std::string(v) + "'"};
        return *d;
    };

    using Handler = std::function<void(std::string_view)>;
    const std::map<std::string, Handler, std::less<>> with_value = {
        {"host", [&](std::string_view v) { o.host = v; }},
        {"port",
         [&](std::string_view v) {
             auto n = parse_count(v);
             if (!n || *n > 65535) throw UsageError{"invalid port '" + std::string(v) + "'"};
             o.port = static_cast<int>(*n);
         }},
        {"model-name", [&](std::string_view v) { o.model_name = v; }},
        {"reply", [&](std::string_view v) { o.reply = std::string(v); }},
        {"reply-tokens", [&](std::string_view v) { o.reply_tokens = need_count(v); }},
        {"fail-on", [&](std::string_view v) { o.fail_on = std::string(v); }},
        {"tokens-per-second",
         [&](std::string_view v) {
             auto r = parse_number(v);
             if (!r || *r < 0) throw UsageError{"invalid rate '" + std::string(v) + "'"};
             o.tokens_per_second = *r;
         }},
        {"startup-delay", [&](std::string_view v) { o.startup_delay = need_duration(v); }},
        {"health-delay", [&](std::string_view v) { o.health_delay = need_duration(v); }},
        {"loading-until", [&](std::string_view v) { o.loading_until = v; }},
        {"hold-until", [&](std::string_view v) { o.hold_until = v; }},
        {"wedge-once", [&](std::string_view v) { o.wedge_once = v; }},
        {"request-log", [&](std::string_view v) { o.request_log = v; }},
        {"rate-limit-once", [&](std::string_view v) { o.rate_limit_once = v; }},
        {"tls-cert", [&](std::string_view v) { o.tls_cert = v; }},
        {"tls-key", [&](std::string_view v) { o.tls_key = v; }},
        {"tls-client-ca", [&](std::string_view v) { o.tls_client_ca = v; }},
        {"crash-mid-stream", [&](std::string_view v) { o.crash_mid_stream = need_count(v); }},
        {"stall-after", [&](std::string_view v) { o.stall_after = need_count(v); }},
        {"fork-children",
         [&](std::string_view v) {
             auto n = need_count(v);
             if (n > 1000) throw UsageError{"--fork-children is limited to 1000"};
             o.fork_children = static_cast<int>(n);
         }},
        {"log-spam",
         [&](std::string_view v) {
             auto n = parse_size(v);
             if (!n) throw UsageError{"invalid size '" + std::string(v) + "'"};
             o.log_spam = *n;
         }},
        {"hold-memory",
         [&](std::string_view v) {
             auto n = parse_size(v);
             if (!n) throw UsageError{"invalid size '" + std::string(v) + "'"};
             o.hold_memory = *n;
         }},
        {"exit-after", [&](std::string_view v) { o.exit_after = need_duration(v); }},
        {"crash-after", [&](std::string_view v) { o.crash_after = need_duration(v); }},
        {"crash-after-requests",
         [&](std::string_view v) {
             auto n = need_count(v);
             if (n == 0) throw UsageError{"--crash-after-requests must be 1 or more"};
             o.crash_after_requests = n;
         }},
        {"crash-signal",
         [&](std::string_view v) {
             auto sig = parse_signal(v);
             if (!sig) throw UsageError{"--crash-signal: unknown signal '" + std::string(v) + "' (a name like SEGV, or a number)"};
             o.crash_signal = *sig;
         }},
    };
    const std::map<std::string, bool*, std::less<>> switches = {
        {"help", &help},
        {"reuseport", &o.reuseport},
        {"stderr-only", &o.stderr_only},
        {"stamp-tokens", &o.stamp_tokens},
        {"no-usage", &o.no_usage},
        {"echo-history", &o.echo_history},
        {"crash-at-start", &o.crash_at_start},
        {"port-taken", &o.port_taken},
        {"ignore-sigterm", &o.ignore_sigterm},
        {"abort-on-term-in-flight", &o.abort_on_term_in_flight},
        {"escape-child", &o.escape_child},
        {"wedge", &o.wedge},
    };

    try {
        for (int i = 1; i < argc; ++i) {
            std::string_view arg = argv[i];
            if (arg == "-h") arg = "--help";
            if (!arg.starts_with("--")) throw UsageError{"unexpected argument '" + std::string(arg) + "'"};
            arg.remove_prefix(2);
            std::optional<std::string_view> inline_value;
            if (auto eq = arg.find('='); eq != std::string_view::npos) {
                inline_value = arg.substr(eq + 1);
                arg = arg.substr(0, eq);
            }
            if (auto s = switches.find(arg); s != switches.end()) {
                if (inline_value) throw UsageError{"--" + std::string(arg) + " takes no value"};
                *s->second = true;
            } else if (auto h = with_value.find(arg); h != with_value.end()) {
                if (!inline_value) {
                    if (i + 1 >= argc) throw UsageError{"--" + std::string(arg) + " needs a value"};
                    inline_value = argv[++i];
                }
                h->second(*inline_value);
            } else {
                throw UsageError{"unknown option '--" + std::string(arg) + "'"};
            }
        }
        if (help) return {std::nullopt, 0, usage_text()};
        if (o.port < 0) throw UsageError{"--port is required"};
        if (o.tls_cert.empty() != o.tls_key.empty()) throw UsageError{"--tls-cert and --tls-key go together"};
        if (!o.tls_client_ca.empty() && o.tls_cert.empty()) throw UsageError{"--tls-client-ca needs --tls-cert and --tls-key"};
    } catch (const UsageError& e) {
        return {std::nullopt, 2, std::string(k_program) + ": " + e.message + "\nTry '" + std::string(k_program) + " --help'.\n"};
    }
    return {std::move(o), 0, {}};
}

} // namespace mock
