#include "llmctl/config_keys.hpp"

#include "llmctl/address.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/memory_estimate.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/strings.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fmt/format.h>
#include <functional>
#include <limits>
#include <type_traits>
#include <toml++/toml.h>

namespace llmctl {

namespace {

// Reads typed values out of one file's TOML; every error points at a place in it.
class Reader {
public:
    explicit Reader(std::string source) : source_(std::move(source)) {}

    const std::string& source() const { return source_; }

    [[noreturn]] void fail(const toml::source_region& at, const std::string& what, const std::string& hint = {}) const {
        throw Error(Exit::config, fmt::format("{}:{}:{}: {}", source_, at.begin.line, at.begin.column, what), hint);
    }

    // "FILE:LINE:COL" of a node, for messages given later (a cwd that does not exist).
    std::string place(const toml::node& n) const { return place(n.source()); }
    std::string place(const toml::source_region& at) const { return fmt::format("{}:{}:{}", source_, at.begin.line, at.begin.column); }

    bool boolean(const toml::node& n, std::string_view key) const {
        if (auto b = n.value_exact<bool>()) return *b;
        fail(n.source(), fmt::format("\"{}\" must be true or false, not {}", key, type_name(n)));
    }

    std::string string(const toml::node& n, std::string_view key) const {
        if (auto s = n.value<std::string>()) return *s;
        fail(n.source(), fmt::format("\"{}\" must be a string, not {}", key, type_name(n)));
    }

    int integer(const toml::node& n, std::string_view key, long lo, long hi) const {
        auto v = n.value_exact<int64_t>();
        if (!v) fail(n.source(), fmt::format("\"{}\" must be an integer, not {}", key, type_name(n)));
        if (*v < lo || *v > hi) fail(n.source(), fmt::format("\"{}\" = {} is out of range ({}–{})", key, *v, lo, hi));
        return static_cast<int>(*v);
    }

    int port(const toml::node& n, std::string_view key) const { return integer(n, key, 1, 65535); }

    Millis duration(const toml::node& n, std::string_view key) const {
        if (auto i = n.value_exact<int64_t>()) {
            if (*i < 0) fail(n.source(), fmt::format("\"{}\" must not be negative", key));
            if (*i > std::numeric_limits<std::int64_t>::max() / 1000) // (found by the config fuzzer: the product overflowed)
                fail(n.source(), fmt::format("\"{}\" = {} seconds is too long", key, *i), "write durations like \"90s\" or \"1h30m\"");
            return Millis(*i * 1000);
        }
        auto s = n.value<std::string>();
        if (!s) fail(n.source(), fmt::format("\"{}\" must be a duration string like \"90s\", not {}", key, type_name(n)));
        auto d = parse_duration(*s);
        if (!d)
            fail(n.source(), fmt::format("\"{}\": bad duration \"{}\"", key, *s),
                 "write durations like \"500ms\", \"90s\", \"2m\", \"1h30m\" or \"0\"");
        return *d;
    }

    std::uint64_t size(const toml::node& n, std::string_view key) const {
        if (auto i = n.value_exact<int64_t>()) {
            if (*i < 0) fail(n.source(), fmt::format("\"{}\" must not be negative", key));
            return static_cast<std::uint64_t>(*i);
        }
        auto s = n.value<std::string>();
        if (!s) fail(n.source(), fmt::format("\"{}\" must be a size string like \"64MiB\", not {}", key, type_name(n)));
        if (size_unit_is_ambiguous(*s))
            fail(n.source(), fmt::format("\"{}\" = \"{}\": is that powers of 1024 or of 1000?", key, *s),
                 fmt::format("write \"{}iB\" (binary: KiB MiB GiB TiB) or \"{}B\" (decimal: kB MB GB TB)", *s, *s));
        auto v = parse_size(*s);
        if (!v)
            fail(n.source(), fmt::format("\"{}\": bad size \"{}\"", key, *s),
                 "write sizes like \"512KiB\", \"64MiB\", \"1GiB\" (powers of 1024) or \"64MB\" (powers of 1000)");
        return *v;
    }

    std::pair<int, int> port_range(const toml::node& n, std::string_view key) const {
        auto* arr = n.as_array();
        if (!arr || arr->size() != 2) fail(n.source(), fmt::format("\"{}\" must be an array of two ports, like [10500, 10999]", key));
        int lo = port(*arr->get(0), key);
        int hi = port(*arr->get(1), key);
        if (lo > hi) fail(n.source(), fmt::format("\"{}\" is inverted: {} > {}", key, lo, hi), "write the lower port first");
        return {lo, hi};
    }

    // "~" and "~/…" are the home directory; a relative cwd is relative to the config file's
    // directory (as a compose file's paths are), not to wherever llmctl happens to run.
    std::string cwd(const std::string& cwd) const {
        std::string out = cwd;
        if (const char* h = std::getenv("HOME"); h && (out == "~" || out.rfind("~/", 0) == 0)) out = std::string(h) + out.substr(1);
        if (out.empty() || out[0] == '/' || out[0] == '{') return out;
        auto slash = source_.find_last_of('/');
        std::string base = slash == std::string::npos ? "." : source_.substr(0, slash);
        try {
            return canonical_path(base) + "/" + out;
        } catch (const Error&) {
            return base + "/" + out;
        }
    }

    static std::string type_name(const toml::node& n) {
        switch (n.type()) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        default: return "a date/time";
        }
    }

private:
    std::string source_;
};

// A key with how it is read into, and shown from, the settings of its scope: Settings (a model's
// or [defaults]) or ServeSettings ([serve]).
template <class Target>
struct Rule {
    ConfigKey key;
    std::function<void(const Reader&, const toml::node&, Target&)> read;
    std::function<nlohmann::json(const Target&)> show;
};
using KeyRule = Rule<Settings>;
using ServeRule = Rule<ServeSettings>;

// The settings object a member of `Owner` is read into: Settings for Defaults and ModelConfig.
template <class Owner>
using TargetOf = std::conditional_t<std::is_base_of_v<Settings, Owner>, Settings, Owner>;

// The settings a key's scope says they are: [defaults] keys are read into Defaults, model keys
// into a ModelConfig, shared keys into either.
template <class Owner>
Owner& as(TargetOf<Owner>& s) {
    return static_cast<Owner&>(s);
}
template <class Owner>
const Owner& as(const TargetOf<Owner>& s) {
    return static_cast<const Owner&>(s);
}

template <class Owner, class V, class Get, class Show>
Rule<TargetOf<Owner>> field(ConfigKey k, V Owner::*m, Get get, Show show) {
    return {k, [=](const Reader& r, const toml::node& n, TargetOf<Owner>& s) { as<Owner>(s).*m = get(r, n, k.name); },
            [=](const TargetOf<Owner>& s) { return nlohmann::json(show(as<Owner>(s).*m)); }};
}

template <class Owner>
Rule<TargetOf<Owner>> duration_key(ConfigKey k, Millis Owner::*m) {
    return field(
        k, m, [](const Reader& r, const toml::node& n, std::string_view key) { return r.duration(n, key); },
        [](Millis v) { return format_duration(v); });
}

template <class Owner>
Rule<TargetOf<Owner>> integer_key(ConfigKey k, int Owner::*m, long lo, long hi) {
    return field(
        k, m, [lo, hi](const Reader& r, const toml::node& n, std::string_view key) { return r.integer(n, key, lo, hi); },
        [](int v) { return v; });
}

template <class Owner>
Rule<TargetOf<Owner>> string_key(ConfigKey k, std::string Owner::*m) {
    return field(
        k, m, [](const Reader& r, const toml::node& n, std::string_view key) { return r.string(n, key); },
        [](const std::string& v) { return v; });
}

// A file's path: "~" and a relative path resolved as cwd is (relative to the config file).
template <class Owner>
Rule<TargetOf<Owner>> path_key(ConfigKey k, std::string Owner::*m) {
    return field(
        k, m, [](const Reader& r, const toml::node& n, std::string_view key) { return r.cwd(r.string(n, key)); },
        [](const std::string& v) { return v.empty() ? nlohmann::json() : nlohmann::json(v); });
}

// A string that may be left out: shown as null then.
template <class Owner>
Rule<TargetOf<Owner>> optional_string_key(ConfigKey k, std::string Owner::*m) {
    return field(
        k, m, [](const Reader& r, const toml::node& n, std::string_view key) { return r.string(n, key); },
        [](const std::string& v) { return v.empty() ? nlohmann::json() : nlohmann::json(v); });
}

std::string read_host(const Reader& r, const toml::node& n, std::string_view key) {
    std::string host = r.string(n, key);
    if (!valid_host(host))
        r.fail(n.source(), fmt::format("\"host\" = \"{}\" is not an IP address or \"localhost\"", host),
               "give the address the server binds: \"127.0.0.1\", \"::1\", \"0.0.0.0\" (all IPv4 interfaces) or \"::\"");
    return bare_host(host);
}

std::string read_health(const Reader& r, const toml::node& n, std::string_view key) {
    std::string health = r.string(n, key);
    if (!valid_health(health))
        r.fail(n.source(), fmt::format("\"health\" = \"{}\" is neither an HTTP path starting with \"/\" nor \"tcp\"", health),
               "the path that answers 200 when the server is ready, or \"tcp\" to wait until its port accepts connections");
    return health;
}

std::string read_restart(const Reader& r, const toml::node& n, std::string_view key) {
    std::string v = r.string(n, key);
    if (v != "no" && v != "on-failure" && v != "always")
        r.fail(n.source(),
               fmt::format("\"restart\" = \"{}\" is not a restart policy{}", v, did_you_mean_suffix(v, {"no", "on-failure", "always"})),
               "\"no\" (the default), \"on-failure\" (a non-zero exit or a signal) or \"always\"");
    return v;
}

std::string read_probe(const Reader& r, const toml::node& n, std::string_view key) {
    std::string v = r.string(n, key);
    if (v != "" && v != "health" && v != "completion")
        r.fail(n.source(), fmt::format("\"probe\" = \"{}\" is not a probe{}", v, did_you_mean_suffix(v, {"health", "completion"})),
               "\"health\" (its health path must answer 200), \"completion\" (a one-token completion must succeed) or \"\" (none)");
    return v;
}

std::vector<std::string> read_command(const Reader& r, const toml::node& n, std::string_view) {
    auto* arr = n.as_array();
    if (!arr)
        r.fail(n.source(), "\"command\" must be an array of strings (argv), like [\"llama-server\", \"--port\", \"{port}\"]",
               "llmctl runs the command directly, never through a shell");
    std::vector<std::string> argv;
    for (auto&& el : *arr) argv.push_back(r.string(el, "command[]"));
    return argv;
}

// An array of non-empty strings; `like` is an example value for the message.
std::vector<std::string> read_strings(const Reader& r, const toml::node& n, std::string_view key, std::string_view like) {
    auto* arr = n.as_array();
    if (!arr) r.fail(n.source(), fmt::format("\"{}\" must be an array of strings, like {}", key, like));
    std::vector<std::string> out;
    for (auto&& el : *arr) {
        std::string a = r.string(el, fmt::format("{}[]", key));
        if (a.empty()) r.fail(el.source(), fmt::format("an entry of \"{}\" must not be empty", key));
        out.push_back(std::move(a));
    }
    return out;
}

std::vector<std::string> read_aliases(const Reader& r, const toml::node& n, std::string_view key) {
    return read_strings(r, n, key, "[\"gpt-4o\", \"default\"]");
}

std::string read_listen(const Reader& r, const toml::node& n, std::string_view key) {
    std::string listen = r.string(n, key);
    if (!parse_listen_address(listen))
        r.fail(n.source(), fmt::format("\"listen\" = \"{}\" is not HOST:PORT", listen),
               "e.g. \"127.0.0.1:8080\", \"[::1]:8080\", \"0.0.0.0:8080\" (every interface: needs api_key_env) or \":8080\"");
    return listen;
}

std::vector<std::string> read_hosts(const Reader& r, const toml::node& n, std::string_view key) {
    auto hosts = read_strings(r, n, key, "[\"llm.example.lan\", \"192.168.1.20\"]");
    for (auto& h : hosts)
        if (h.find_first_of(" /?#@") != std::string::npos)
            r.fail(n.source(), fmt::format("\"{}\" holds \"{}\", which is not a host name", key, h),
                   "give names as clients write them in the URL, without scheme or port");
    return hosts;
}

std::vector<std::string> read_origins(const Reader& r, const toml::node& n, std::string_view key) {
    auto origins = read_strings(r, n, key, "[\"http://localhost:3000\"]");
    for (auto& o : origins)
        if (o != "*" && o.rfind("http://", 0) != 0 && o.rfind("https://", 0) != 0)
            r.fail(n.source(), fmt::format("\"{}\" holds \"{}\", which is not an origin", key, o),
                   "an origin is SCHEME://HOST[:PORT] as a browser sends it, e.g. \"http://localhost:3000\", or \"*\" for any");
    return origins;
}

template <class Owner>
Rule<TargetOf<Owner>> size_key(ConfigKey k, std::uint64_t Owner::*m) {
    return field(
        k, m, [](const Reader& r, const toml::node& n, std::string_view key) { return r.size(n, key); },
        [](std::uint64_t v) { return format_size(v); });
}

std::string read_url(const Reader& r, const toml::node& n, std::string_view key) {
    std::string url = r.string(n, key);
    try {
        parse_url(url); // the same check chat makes, but now, with the file and line
    } catch (const Error&) {
        r.fail(n.source(), fmt::format("\"url\" must look like http://HOST[:PORT][/PATH] or https://HOST[:PORT][/PATH], got \"{}\"", url),
               "the server's root: llmctl appends /v1/chat/completions");
    }
    while (!url.empty() && url.back() == '/') url.pop_back();
    return url;
}

std::map<std::string, std::string> read_env(const Reader& r, const toml::node& n, std::string_view) {
    auto* t = n.as_table();
    if (!t) r.fail(n.source(), "\"env\" must be a table of strings, like { CUDA_VISIBLE_DEVICES = \"0\" }");
    std::map<std::string, std::string> env;
    for (auto&& [k, v] : *t) {
        std::string var(k.str());
        if (var.empty() || var.find('=') != std::string::npos) r.fail(k.source(), fmt::format("bad environment variable name \"{}\"", var));
        env[var] = r.string(v, "env." + var);
    }
    return env;
}

// An external model's extra request headers: names that are HTTP tokens, values without line
// breaks (no header can smuggle another), and none of the headers llmctl writes itself.
std::map<std::string, std::string> read_headers(const Reader& r, const toml::node& n, std::string_view) {
    auto* t = n.as_table();
    if (!t) r.fail(n.source(), "\"headers\" must be a table of strings, like { \"OpenAI-Organization\" = \"org-123\" }");
    static const std::string k_token = "!#$%&'*+-.^_`|~";
    std::map<std::string, std::string> out;
    for (auto&& [k, v] : *t) {
        std::string name(k.str());
        if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || k_token.find(c) != std::string::npos;
            }))
            r.fail(k.source(), fmt::format("\"{}\" is not an HTTP header name", name), "letters, digits and -, like X-Title");
        std::string lower = name;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower == "authorization")
            r.fail(k.source(), "headers may not set Authorization", "put the key in an environment variable and name it with api_key_env");
        for (const char* own : {"host", "content-length", "content-type", "transfer-encoding", "connection", "accept", "user-agent"})
            if (lower == own) r.fail(k.source(), fmt::format("headers may not set {}: llmctl writes it", name));
        std::string value = r.string(v, "headers." + name);
        if (value.find_first_of("\r\n") != std::string::npos || value.find('\0') != std::string::npos)
            r.fail(v.source(), fmt::format("the value of header {} has a line break", name));
        out[name] = value;
    }
    return out;
}

KeyRule port_range_key(ConfigKey k) {
    return {k, [k](const Reader& r, const toml::node& n, Settings& s) { std::tie(s.port_min, s.port_max) = r.port_range(n, k.name); },
            [](const Settings& s) {
                return nlohmann::json{s.port_min, s.port_max};
            }};
}

KeyRule port_key(ConfigKey k) {
    return field(
        k, &ModelConfig::port, [](const Reader& r, const toml::node& n, std::string_view key) { return std::optional(r.port(n, key)); },
        [](const std::optional<int>& p) { return p ? nlohmann::json(*p) : nlohmann::json(); });
}

// The cwd is resolved when read (relative to the config file) and remembers where it was
// written, for `config check` and start to name.
KeyRule cwd_key(ConfigKey k) {
    return {k,
            [k](const Reader& r, const toml::node& n, Settings& s) {
                auto& m = as<ModelConfig>(s);
                m.cwd = r.cwd(r.string(n, k.name));
                m.cwd_at = r.place(n);
            },
            [](const Settings& s) { return as<ModelConfig>(s).cwd.empty() ? nlohmann::json() : nlohmann::json(as<ModelConfig>(s).cwd); }};
}

// memory = "9GiB" or "auto"; where it was written is kept for the checks made once every table
// is read (config_keys.cpp, check_pools).
KeyRule memory_key(ConfigKey k) {
    return {k,
            [k](const Reader& r, const toml::node& n, Settings& s) {
                auto& m = as<ModelConfig>(s);
                m.memory_at = r.place(n);
                m.memory_auto = n.value<std::string>() == "auto";
                m.memory.reset();
                if (m.memory_auto) return;
                m.memory = r.size(n, k.name);
                if (*m.memory == 0)
                    r.fail(n.source(), "\"memory\" must be more than 0", "give the server's size, like \"9GiB\", or \"auto\"");
            },
            [](const Settings& s) {
                auto& m = as<ModelConfig>(s);
                return m.memory_auto ? nlohmann::json("auto") : m.memory ? nlohmann::json(format_size(*m.memory)) : nlohmann::json();
            }};
}

// pool = "NAME" ("" for none: a model leaves the pool of [defaults]).
KeyRule pool_key(ConfigKey k) {
    return {k,
            [k](const Reader& r, const toml::node& n, Settings& s) {
                s.pool = r.string(n, k.name);
                s.pool_at = r.place(n);
            },
            [](const Settings& s) { return s.pool.empty() ? nlohmann::json() : nlohmann::json(s.pool); }};
}

// Every key llmctl reads, in the order of llmctl.toml(5). The defaults are Settings' and
// Defaults' member initialisers; llmctl.toml(5) states them, and a unit test holds the two equal.
const std::vector<KeyRule>& rules() {
    using enum KeyScope;
    using enum KeyUse;
    static const std::vector<KeyRule> table = {
        field({"command", model, managed, "[string, ...]", "the server's argv, program first, run without a shell"}, &ModelConfig::command,
              read_command, [](const std::vector<std::string>& v) { return v; }),
        field({"url", model, external, "string", "the root of an external server: http://HOST[:PORT][/PATH]"}, &ModelConfig::url, read_url,
              [](const std::string& v) { return v; }),
        optional_string_key({"api_key_env", model, external, "string", "the environment variable holding an external model's API key"},
                            &ModelConfig::api_key_env),
        field({"headers", model, external, "{ NAME = string, ... }", "extra headers sent with each request to an external server"},
              &ModelConfig::headers, read_headers, [](const std::map<std::string, std::string>& v) { return v; }),
        path_key({"ca_file", model, external, "string", "an https url's CA certificates (PEM), instead of the system's"},
                 &ModelConfig::ca_file),
        path_key({"client_cert", model, external, "string", "the client certificate (PEM) an https server asks for"},
                 &ModelConfig::client_cert),
        path_key({"client_key", model, external, "string", "client_cert's private key (PEM; default: in client_cert's file)"},
                 &ModelConfig::client_key),
        field(
            {"tls_verify", model, external, "boolean", "false: trust any certificate (with a warning at each use; for tests)"},
            &ModelConfig::tls_verify, [](const Reader& r, const toml::node& n, std::string_view key) { return r.boolean(n, key); },
            [](bool v) { return v; }),
        string_key({"model", model, both, "string", "the model field sent in chat requests"}, &ModelConfig::model),
        field({"aliases", model, both, "[string, ...]", "more names a request to llmctl serve may use for this model"},
              &ModelConfig::aliases, read_aliases, [](const std::vector<std::string>& v) { return v; }),
        port_key({"port", model, managed, "integer", "a fixed port instead of one from port_range"}),
        field({"env", model, managed, "{ NAME = string, ... }", "extra environment variables for the server"}, &ModelConfig::env, read_env,
              [](const std::map<std::string, std::string>& v) { return v; }),
        cwd_key({"cwd", model, managed, "string", "the server's working directory"}),
        memory_key({"memory", model, managed, "size or \"auto\"", "the memory its server takes in its pool, or estimated from its GGUF"}),
        field(
            {"pin", model, managed, "boolean", "never evicted to make room for another model"}, &ModelConfig::pin,
            [](const Reader& r, const toml::node& n, std::string_view key) { return r.boolean(n, key); }, [](bool v) { return v; }),
        field(
            {"preload", model, managed, "boolean", "kept running: started by reap, serve and apply when it is not"}, &ModelConfig::preload,
            [](const Reader& r, const toml::node& n, std::string_view key) { return r.boolean(n, key); }, [](bool v) { return v; }),

        field({"host", shared, managed, "string", "the address the server listens on and llmctl connects to"}, &Settings::host, read_host,
              [](const std::string& v) { return v; }),
        port_range_key({"port_range", shared, managed, "[low, high]", "ports to allocate from"}),
        field({"health", shared, managed, "string", "the HTTP path that answers 200 when the server is ready, or \"tcp\""},
              &Settings::health, read_health, [](const std::string& v) { return v; }),
        integer_key({"max_concurrent", shared, both, "integer", "chat requests to this model that may run at once"},
                    &Settings::max_concurrent, 1, 100000),
        duration_key({"startup_timeout", shared, managed, "duration", "how long start waits for health"}, &Settings::startup_timeout),
        duration_key({"stop_timeout", shared, managed, "duration", "grace between SIGTERM and SIGKILL"}, &Settings::stop_timeout),
        duration_key({"drain_timeout", shared, managed, "duration", "how long a stop waits for chats in flight"}, &Settings::drain_timeout),
        duration_key({"idle_timeout", shared, managed, "duration", "reap stops a server unused for this long"}, &Settings::idle_timeout),
        duration_key({"connect_timeout", shared, both, "duration", "chat: connecting to the server"}, &Settings::connect_timeout),
        duration_key({"first_token_timeout", shared, both, "duration", "chat: from the request to the first byte of the answer"},
                     &Settings::first_token_timeout),
        duration_key({"stall_timeout", shared, both, "duration", "chat: the longest silence in a streamed answer"},
                     &Settings::stall_timeout),
        duration_key({"request_timeout", shared, both, "duration", "chat: the whole answer"}, &Settings::request_timeout),
        duration_key({"queue_timeout", shared, both, "duration", "chat: the longest wait for a slot"}, &Settings::queue_timeout),
        size_key({"log_max_size", shared, managed, "size", "logs above this size are rotated"}, &Settings::log_max_size),
        integer_key({"log_keep", shared, managed, "integer", "rotated log files to keep"}, &Settings::log_keep, 0, 1000),
        pool_key({"pool", shared, managed, "string", "the [pools.NAME] whose memory its servers count against"}),
        field({"restart", shared, managed, "string", "when a server that exited is started again: \"no\", \"on-failure\", \"always\""},
              &Settings::restart, read_restart, [](const std::string& v) { return v; }),
        integer_key({"restart_max", shared, managed, "integer", "restarts allowed within restart_window before it is failed"},
                    &Settings::restart_max, 1, 1000),
        duration_key({"restart_window", shared, managed, "duration", "the window restart_max counts restarts in"},
                     &Settings::restart_window),
        duration_key({"restart_delay", shared, managed, "duration", "the first restart's delay, doubled for each next one up to 5m"},
                     &Settings::restart_delay),
        field({"probe", shared, managed, "string", "a check beside the server: \"health\" or \"completion\" (\"\": none)"},
              &Settings::probe, read_probe, [](const std::string& v) { return v; }),
        duration_key({"probe_every", shared, managed, "duration", "the time between two probes"}, &Settings::probe_every),
        duration_key({"probe_timeout", shared, managed, "duration", "a probe's answer, and its wait for a slot"}, &Settings::probe_timeout),

        integer_key({"max_inflight", defaults, both, "integer", "chat requests that may run at once over all models"},
                    &Defaults::max_inflight, 0, 100000),
    };
    return table;
}

// The keys of [serve], in the order of llmctl.toml(5); `llmctl serve`'s flags override them.
const std::vector<ServeRule>& serve_rules() {
    using enum KeyUse;
    constexpr KeyScope serve = KeyScope::serve;
    static const std::vector<ServeRule> table = {
        field({"listen", serve, both, "string", "the address llmctl serve listens on"}, &ServeSettings::listen, read_listen,
              [](const std::string& v) { return v; }),
        optional_string_key({"api_key_env", serve, both, "string", "the variable holding the key clients must send"},
                            &ServeSettings::api_key_env),
        field({"cors_origins", serve, both, "[string, ...]", "browser origins allowed to call"}, &ServeSettings::cors_origins, read_origins,
              [](const std::vector<std::string>& v) { return v; }),
        field({"allowed_hosts", serve, both, "[string, ...]", "more Host names clients may use than the listen address"},
              &ServeSettings::allowed_hosts, read_hosts, [](const std::vector<std::string>& v) { return v; }),
        size_key({"max_body", serve, both, "size", "the largest request body"}, &ServeSettings::max_body),
        duration_key({"header_timeout", serve, both, "duration", "time for a request's headers"}, &ServeSettings::header_timeout),
        duration_key({"drain_timeout", serve, both, "duration", "on SIGTERM, time for requests in flight"}, &ServeSettings::drain_timeout),
        integer_key({"max_queue", serve, both, "integer", "requests that may wait per model"}, &ServeSettings::max_queue, 1, 1000000),
        duration_key({"reap_every", serve, both, "duration", "how often serve runs reap"}, &ServeSettings::reap_every),
    };
    return table;
}

using PoolRule = Rule<PoolConfig>;

std::string read_kind(const Reader& r, const toml::node& n, std::string_view key) {
    std::string kind = r.string(n, key);
    if (kind != "ram" && kind != "gpu")
        r.fail(n.source(), fmt::format("\"kind\" = \"{}\" is neither \"ram\" nor \"gpu\"", kind),
               "\"ram\": the servers' resident memory counts; \"gpu\": their memory on the GPU (nvidia-smi)");
    return kind;
}

// The keys of [pools.NAME], in the order of llmctl.toml(5).
const std::vector<PoolRule>& pool_rules() {
    using enum KeyUse;
    constexpr KeyScope pool = KeyScope::pool;
    static const std::vector<PoolRule> table = {
        field(
            {"memory", pool, managed, "size or \"auto\"", "the pool's budget, or the GPU's or the machine's whole memory"},
            &PoolConfig::memory,
            [](const Reader& r, const toml::node& n, std::string_view key) -> std::optional<std::uint64_t> {
                if (n.value<std::string>() == "auto") return std::nullopt;
                auto v = r.size(n, key);
                if (v == 0) r.fail(n.source(), "a pool's \"memory\" must be more than 0", "give its budget, like \"24GiB\", or \"auto\"");
                return v;
            },
            [](const std::optional<std::uint64_t>& v) { return v ? nlohmann::json(format_size(*v)) : nlohmann::json("auto"); }),
        field({"kind", pool, managed, "string", "what memory the pool is: \"ram\" or \"gpu\""}, &PoolConfig::kind, read_kind,
              [](const std::string& v) { return v; }),
        integer_key({"gpu", pool, managed, "integer", "kind \"gpu\": the GPU's index in nvidia-smi"}, &PoolConfig::gpu, 0, 1023),
    };
    return table;
}

bool allowed_in(const ConfigKey& k, KeyScope table) { return k.scope == KeyScope::shared || k.scope == table; }

const KeyRule* rule_for(std::string_view name, KeyScope table) {
    for (const auto& r : rules())
        if (r.key.name == name && allowed_in(r.key, table)) return &r;
    return nullptr;
}

std::vector<std::string> names_allowed_in(KeyScope table) {
    std::vector<std::string> out;
    if (table == KeyScope::serve) {
        for (const auto& r : serve_rules()) out.emplace_back(r.key.name);
        return out;
    }
    if (table == KeyScope::pool) {
        for (const auto& r : pool_rules()) out.emplace_back(r.key.name);
        return out;
    }
    for (const auto& r : rules())
        if (allowed_in(r.key, table)) out.emplace_back(r.key.name);
    return out;
}

bool shown_for(const ConfigKey& k, const ModelConfig& m) { return k.use == KeyUse::both || (k.use == KeyUse::external) == m.external(); }

// Parses one file: the tables, then each key through its rule.
class Parser {
public:
    explicit Parser(std::string source) : r_(std::move(source)) {}

    Config parse(const std::string& text) {
        toml::table root;
        try {
            root = toml::parse(text, r_.source());
        } catch (const toml::parse_error& e) {
            r_.fail(e.source(), fmt::format("TOML syntax error: {}", e.description()));
        }
        Config cfg;
        cfg.source = r_.source();
        check_keys(root, {"defaults", "models", "pools", "serve"}, "the top level");
        if (auto* d = root.get("defaults")) {
            auto* t = d->as_table();
            if (!t) r_.fail(d->source(), "\"defaults\" must be a table ([defaults])");
            read_keys(*t, KeyScope::defaults, "[defaults]", cfg.defaults);
        }
        if (auto* sv = root.get("serve")) {
            auto* t = sv->as_table();
            if (!t) r_.fail(sv->source(), "\"serve\" must be a table ([serve])");
            read_serve_keys(*t, cfg.serve);
        }
        if (auto* m = root.get("models")) {
            auto* t = m->as_table();
            if (!t) r_.fail(m->source(), "\"models\" must be a table of tables ([models.NAME])");
            for (auto&& [k, v] : *t) parse_model(std::string(k.str()), k.source(), v, cfg);
        }
        if (auto* p = root.get("pools")) {
            auto* t = p->as_table();
            if (!t) r_.fail(p->source(), "\"pools\" must be a table of tables ([pools.NAME])");
            for (auto&& [k, v] : *t) parse_pool(std::string(k.str()), k.source(), v, cfg);
        }
        for (auto& [name, m] : cfg.models) check_pool_of(m, cfg);
        return cfg;
    }

private:
    void check_keys(const toml::table& t, const std::vector<std::string>& allowed, const std::string& where) const {
        for (auto&& [k, v] : t) {
            std::string key(k.str());
            if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
            r_.fail(k.source(), fmt::format("unknown key \"{}\" in {}{}", key, where, did_you_mean_suffix(key, allowed)),
                    "see llmctl.toml(5) for the keys a config may hold");
        }
    }

    void read_keys(const toml::table& t, KeyScope table, const std::string& where, Settings& into) const {
        check_keys(t, names_allowed_in(table), where);
        for (auto&& [k, v] : t) rule_for(k.str(), table)->read(r_, v, into);
    }

    void read_serve_keys(const toml::table& t, ServeSettings& into) const {
        check_keys(t, names_allowed_in(KeyScope::serve), "[serve]");
        for (auto&& [k, v] : t)
            for (const auto& r : serve_rules())
                if (r.key.name == k.str()) r.read(r_, v, into);
    }

    void parse_model(const std::string& name, const toml::source_region& at, const toml::node& node, Config& cfg) const {
        if (!valid_model_name(name))
            r_.fail(at, fmt::format("bad model name \"{}\"", name),
                    "a model name starts with a letter or digit and holds only letters, digits, '.', '_' and '-' (no \"..\", at most 64 "
                    "bytes)");
        auto* t = node.as_table();
        if (!t) r_.fail(node.source(), fmt::format("model \"{}\" must be a table ([models.{}])", name, name));
        ModelConfig mc = model_from_defaults(cfg.defaults, name);
        mc.at = r_.place(at);
        read_keys(*t, KeyScope::model, fmt::format("[models.{}]", name), mc);
        check_kind(name, at, *t, mc);
        cfg.models[name] = std::move(mc);
    }

    void parse_pool(const std::string& name, const toml::source_region& at, const toml::node& node, Config& cfg) const {
        if (!valid_model_name(name))
            r_.fail(at, fmt::format("bad pool name \"{}\"", name), "a pool's name follows the rules of a model's (llmctl.toml(5))");
        auto* t = node.as_table();
        if (!t) r_.fail(node.source(), fmt::format("pool \"{}\" must be a table ([pools.{}])", name, name));
        PoolConfig pool;
        pool.name = name;
        pool.at = r_.place(at);
        check_keys(*t, names_allowed_in(KeyScope::pool), fmt::format("[pools.{}]", name));
        for (auto&& [k, v] : *t)
            for (const auto& r : pool_rules())
                if (r.key.name == k.str()) r.read(r_, v, pool);
        if (auto* gpu = t->get("gpu"); gpu && pool.kind != "gpu")
            r_.fail(gpu->source(), fmt::format("pool \"{}\" has \"gpu\" but is not of kind = \"gpu\"", name),
                    "add kind = \"gpu\", or remove \"gpu\"");
        cfg.pools[name] = std::move(pool);
    }

    // A model in a pool: the pool exists, its memory can be known, and it fits in the pool at all.
    void check_pool_of(ModelConfig& m, const Config& cfg) const {
        if (m.pool.empty() || m.external()) return;
        auto it = cfg.pools.find(m.pool);
        if (it == cfg.pools.end()) {
            std::vector<std::string> names;
            for (auto& [n, _] : cfg.pools) names.push_back(n);
            throw Error(Exit::config,
                        fmt::format("{}: model \"{}\": no pool \"{}\"{}", m.pool_at, m.name, m.pool, did_you_mean_suffix(m.pool, names)),
                        fmt::format("define it ([pools.{}] with memory = \"24GiB\"), or remove \"pool\"", m.pool));
        }
        if (!m.memory) {
            m.memory_auto = true; // the default in a pool
            if (m.memory_at.empty()) m.memory_at = m.at;
        }
        if (m.memory_auto) {
            if (auto why = why_not_estimable(m.command, m.env))
                throw Error(Exit::config,
                            fmt::format("{}: model \"{}\" is in pool \"{}\" with memory = \"auto\"{}, but {}", m.memory_at, m.name, m.pool,
                                        m.memory_at == m.at ? " (the default)" : "", *why),
                            "declare its memory instead, like memory = \"9GiB\" (llmctl.toml(5), MEMORY)");
        } else if (it->second.memory && *m.memory > *it->second.memory) {
            throw Error(Exit::config,
                        fmt::format("{}: model \"{}\" takes memory = \"{}\", more than the whole of pool \"{}\" ({})", m.memory_at, m.name,
                                    format_size(*m.memory), m.pool, format_size(*it->second.memory)),
                        "it could never start: give the pool more memory, or the model less");
        }
    }

    // A model is managed (command) or external (url), never both and never neither.
    void check_kind(const std::string& name, const toml::source_region& at, const toml::table& t, const ModelConfig& mc) const {
        const toml::node* command = t.get("command");
        const toml::node* url = t.get("url");
        if (command && (mc.command.empty() || mc.command[0].empty()))
            r_.fail(command->source(), fmt::format("\"command\" of model \"{}\" is empty", name), "give the server's argv, program first");
        if (command && url)
            r_.fail(url->source(), fmt::format("model \"{}\" has both \"command\" and \"url\"", name),
                    "use \"command\" for a server llmctl runs, \"url\" for one it only talks to");
        if (!command && !url)
            r_.fail(at, fmt::format("model \"{}\" has neither \"command\" nor \"url\"", name),
                    "add command = [...] (a server llmctl runs) or url = \"http://...\" (an external server)");
        if (url && !mc.url.starts_with("https://"))
            for (const char* key : {"ca_file", "client_cert", "client_key", "tls_verify"})
                if (const toml::node* k = t.get(key))
                    r_.fail(k->source(), fmt::format("\"{}\" of model \"{}\" is for an https:// url, and its url is {}", key, name, mc.url),
                            "use https:// in its url, or leave the key out");
        if (const toml::node* k = t.get("client_key"); k && mc.client_cert.empty())
            r_.fail(k->source(), fmt::format("model \"{}\" has client_key but no client_cert", name),
                    "give the certificate too: client_cert = \"cert.pem\"");
    }

    Reader r_;
};

} // namespace

std::vector<ConfigKey> config_keys() {
    std::vector<ConfigKey> out;
    for (const auto& r : rules()) out.push_back(r.key);
    for (const auto& r : serve_rules()) out.push_back(r.key);
    for (const auto& r : pool_rules()) out.push_back(r.key);
    return out;
}

nlohmann::json pool_json(const PoolConfig& p) {
    nlohmann::json j = {{"name", p.name}};
    for (const auto& r : pool_rules()) j[std::string(r.key.name)] = r.show(p);
    return j;
}

nlohmann::json serve_json(const ServeSettings& s) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& r : serve_rules()) j[std::string(r.key.name)] = r.show(s);
    return j;
}

Config parse_config(const std::string& text, const std::string& source) { return Parser(source).parse(text); }

nlohmann::json defaults_json(const Defaults& d) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& r : rules())
        if (r.key.scope != KeyScope::model) j[std::string(r.key.name)] = r.show(d);
    return j;
}

nlohmann::json model_json(const ModelConfig& m) {
    nlohmann::json j = {{"name", m.name}, {"kind", m.external() ? "external" : "managed"}};
    for (const auto& r : rules())
        if (r.key.scope != KeyScope::defaults && shown_for(r.key, m)) j[std::string(r.key.name)] = r.show(m);
    return j;
}

} // namespace llmctl
