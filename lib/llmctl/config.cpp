#include "llmctl/config.hpp"

#include "llmctl/address.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/files.hpp"
#include "llmctl/http_client.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/strings.hpp"

#include <cstring>

#include <algorithm>
#include <cctype>
#include <fmt/format.h>
#include <functional>
#include <sys/stat.h>
#include <toml++/toml.h>

namespace llmctl {

namespace {

const std::vector<std::string> k_top_keys = {"defaults", "models"};
const std::vector<std::string> k_default_keys = {
    "host", "port_range", "health", "max_concurrent", "max_inflight", "startup_timeout",
    "stop_timeout", "drain_timeout", "idle_timeout", "log_max_size", "log_keep", "connect_timeout", "first_token_timeout",
    "stall_timeout", "request_timeout", "queue_timeout"};
const std::vector<std::string> k_model_keys = {
    "command", "url", "health", "port", "port_range", "host", "env", "cwd", "model",
    "max_concurrent", "api_key_env", "startup_timeout", "stop_timeout", "drain_timeout", "idle_timeout",
    "log_max_size", "log_keep", "connect_timeout", "first_token_timeout", "stall_timeout", "request_timeout",
    "queue_timeout"};

// Parses one file; every error points at a place in it.
class Parser {
public:
    explicit Parser(std::string source) : source_(std::move(source)) {}

    [[noreturn]] void fail(const toml::source_region& at, const std::string& what, const std::string& hint = {}) const {
        throw Error(Exit::config, fmt::format("{}:{}:{}: {}", source_, at.begin.line, at.begin.column, what), hint);
    }

    void check_keys(const toml::table& t, const std::vector<std::string>& allowed, const std::string& where) const {
        for (auto&& [k, v] : t) {
            std::string key(k.str());
            if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
            fail(k.source(), fmt::format("unknown key \"{}\" in {}{}", key, where, did_you_mean_suffix(key, allowed)),
                 "see llmctl.toml(5) for the keys a config may hold");
        }
    }

    std::string get_string(const toml::node& n, const std::string& key) const {
        if (auto s = n.value<std::string>()) return *s;
        fail(n.source(), fmt::format("\"{}\" must be a string, not {}", key, type_name(n)));
    }

    int get_int(const toml::node& n, const std::string& key, long lo, long hi) const {
        auto v = n.value_exact<int64_t>();
        if (!v) fail(n.source(), fmt::format("\"{}\" must be an integer, not {}", key, type_name(n)));
        if (*v < lo || *v > hi) fail(n.source(), fmt::format("\"{}\" = {} is out of range ({}–{})", key, *v, lo, hi));
        return static_cast<int>(*v);
    }

    int get_port(const toml::node& n, const std::string& key) const { return get_int(n, key, 1, 65535); }

    Millis get_duration(const toml::node& n, const std::string& key) const {
        if (auto i = n.value_exact<int64_t>()) {
            if (*i < 0) fail(n.source(), fmt::format("\"{}\" must not be negative", key));
            return Millis(*i * 1000);
        }
        auto s = n.value<std::string>();
        if (!s) fail(n.source(), fmt::format("\"{}\" must be a duration string like \"90s\", not {}", key, type_name(n)));
        auto d = parse_duration(*s);
        if (!d) fail(n.source(), fmt::format("\"{}\": bad duration \"{}\"", key, *s),
                     "write durations like \"500ms\", \"90s\", \"2m\", \"1h30m\" or \"0\"");
        return *d;
    }

    std::uint64_t get_size(const toml::node& n, const std::string& key) const {
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
        if (!v) fail(n.source(), fmt::format("\"{}\": bad size \"{}\"", key, *s),
                     "write sizes like \"512KiB\", \"64MiB\", \"1GiB\" (powers of 1024) or \"64MB\" (powers of 1000)");
        return *v;
    }

    std::pair<int, int> get_range(const toml::node& n, const std::string& key) const {
        auto* arr = n.as_array();
        if (!arr || arr->size() != 2) fail(n.source(), fmt::format("\"{}\" must be an array of two ports, like [10500, 10999]", key));
        int lo = get_port(*arr->get(0), key);
        int hi = get_port(*arr->get(1), key);
        if (lo > hi) fail(n.source(), fmt::format("\"{}\" is inverted: {} > {}", key, lo, hi), "write the lower port first");
        return {lo, hi};
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

    // Settings shared by [defaults] and [models.X]; returns false if `key` is not one of them.
    template <class T>
    bool shared_key(const std::string& key, const toml::node& v, T& out) const {
        if (key == "host") {
            out.host = get_string(v, key);
            if (!valid_host(out.host))
                fail(v.source(), fmt::format("\"host\" = \"{}\" is not an IP address or \"localhost\"", out.host),
                     "give the address the server binds: \"127.0.0.1\", \"::1\", \"0.0.0.0\" (all IPv4 interfaces) or \"::\"");
            out.host = bare_host(out.host);
        } else if (key == "port_range") {
            std::tie(out.port_min, out.port_max) = get_range(v, key);
        } else if (key == "health") {
            out.health = get_string(v, key);
            if (!valid_health(out.health))
                fail(v.source(), fmt::format("\"health\" = \"{}\" is neither an HTTP path starting with \"/\" nor \"tcp\"", out.health),
                     "the path that answers 200 when the server is ready, or \"tcp\" to wait until its port accepts connections");
        } else if (key == "max_concurrent") {
            out.max_concurrent = get_int(v, key, 1, 100000);
        } else if (key == "startup_timeout") {
            out.startup_timeout = get_duration(v, key);
        } else if (key == "stop_timeout") {
            out.stop_timeout = get_duration(v, key);
        } else if (key == "drain_timeout") {
            out.drain_timeout = get_duration(v, key);
        } else if (key == "idle_timeout") {
            out.idle_timeout = get_duration(v, key);
        } else if (key == "connect_timeout") {
            out.connect_timeout = get_duration(v, key);
        } else if (key == "first_token_timeout") {
            out.first_token_timeout = get_duration(v, key);
        } else if (key == "stall_timeout") {
            out.stall_timeout = get_duration(v, key);
        } else if (key == "request_timeout") {
            out.request_timeout = get_duration(v, key);
        } else if (key == "queue_timeout") {
            out.queue_timeout = get_duration(v, key);
        } else if (key == "log_max_size") {
            out.log_max_size = get_size(v, key);
        } else if (key == "log_keep") {
            out.log_keep = get_int(v, key, 0, 1000);
        } else {
            return false;
        }
        return true;
    }

    Config parse(const std::string& text) {
        toml::table root;
        try {
            root = toml::parse(text, source_);
        } catch (const toml::parse_error& e) {
            fail(e.source(), fmt::format("TOML syntax error: {}", e.description()));
        }
        Config cfg;
        cfg.source = source_;
        check_keys(root, k_top_keys, "the top level");
        if (auto* d = root.get("defaults")) {
            auto* t = d->as_table();
            if (!t) fail(d->source(), "\"defaults\" must be a table ([defaults])");
            check_keys(*t, k_default_keys, "[defaults]");
            for (auto&& [k, v] : *t) {
                std::string key(k.str());
                if (key == "max_inflight") cfg.defaults.max_inflight = get_int(v, key, 0, 100000);
                else shared_key(key, v, cfg.defaults);
            }
        }
        if (auto* m = root.get("models")) {
            auto* t = m->as_table();
            if (!t) fail(m->source(), "\"models\" must be a table of tables ([models.NAME])");
            for (auto&& [k, v] : *t) parse_model(std::string(k.str()), k.source(), v, cfg);
        }
        return cfg;
    }

    void parse_model(const std::string& name, const toml::source_region& at, const toml::node& node, Config& cfg) {
        if (!valid_model_name(name))
            fail(at, fmt::format("bad model name \"{}\"", name),
                 "a model name starts with a letter or digit and holds only letters, digits, '.', '_' and '-' (no \"..\", at most 64 bytes)");
        auto* t = node.as_table();
        if (!t) fail(node.source(), fmt::format("model \"{}\" must be a table ([models.{}])", name, name));
        std::string where = fmt::format("[models.{}]", name);
        check_keys(*t, k_model_keys, where);
        ModelConfig mc = model_from_defaults(cfg.defaults, name);
        const toml::node* command_node = nullptr;
        const toml::node* url_node = nullptr;
        for (auto&& [k, v] : *t) {
            std::string key(k.str());
            if (shared_key(key, v, mc)) continue;
            if (key == "command") {
                command_node = &v;
                auto* arr = v.as_array();
                if (!arr) fail(v.source(), "\"command\" must be an array of strings (argv), like [\"llama-server\", \"--port\", \"{port}\"]",
                               "llmctl runs the command directly, never through a shell");
                for (auto&& el : *arr) mc.command.push_back(get_string(el, "command[]"));
                if (mc.command.empty() || mc.command[0].empty())
                    fail(v.source(), fmt::format("\"command\" of model \"{}\" is empty", name), "give the server's argv, program first");
            } else if (key == "url") {
                url_node = &v;
                mc.url = get_string(v, key);
                if (mc.url.rfind("https://", 0) == 0)
                    fail(v.source(), fmt::format("\"url\" = \"{}\": https is not supported", mc.url),
                         "give the http:// address of a local TLS proxy (e.g. stunnel) in front of the server");
                try {
                    parse_url(mc.url); // the same check chat makes, but now, with the file and line
                } catch (const Error&) {
                    fail(v.source(), fmt::format("\"url\" must look like http://HOST[:PORT][/PATH], got \"{}\"", mc.url),
                         "the server's root: llmctl appends /v1/chat/completions");
                }
                while (!mc.url.empty() && mc.url.back() == '/') mc.url.pop_back();
            } else if (key == "port") {
                mc.port = get_port(v, key);
            } else if (key == "env") {
                auto* et = v.as_table();
                if (!et) fail(v.source(), "\"env\" must be a table of strings, like { CUDA_VISIBLE_DEVICES = \"0\" }");
                for (auto&& [ek, ev] : *et) {
                    std::string var(ek.str());
                    if (var.empty() || var.find('=') != std::string::npos) fail(ek.source(), fmt::format("bad environment variable name \"{}\"", var));
                    mc.env[var] = get_string(ev, "env." + var);
                }
            } else if (key == "cwd") {
                mc.cwd = resolve_cwd(get_string(v, key));
                mc.cwd_at = fmt::format("{}:{}:{}", source_, v.source().begin.line, v.source().begin.column);
            } else if (key == "model") {
                mc.model = get_string(v, key);
            } else if (key == "api_key_env") {
                mc.api_key_env = get_string(v, key);
            }
        }
        if (command_node && url_node)
            fail(url_node->source(), fmt::format("model \"{}\" has both \"command\" and \"url\"", name),
                 "use \"command\" for a server llmctl runs, \"url\" for one it only talks to");
        if (!command_node && !url_node)
            fail(at, fmt::format("model \"{}\" has neither \"command\" nor \"url\"", name),
                 "add command = [...] (a server llmctl runs) or url = \"http://...\" (an external server)");
        cfg.models[name] = std::move(mc);
    }

private:
    // "~" and "~/…" are the home directory; a relative cwd is relative to the config file's
    // directory (as a compose file's paths are), not to wherever llmctl happens to run.
    std::string resolve_cwd(const std::string& cwd) const {
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

    std::string source_;
};

} // namespace

ModelConfig model_from_defaults(const Defaults& d, const std::string& name) {
    ModelConfig mc;
    mc.name = mc.model = name;
    mc.host = d.host;
    mc.port_min = d.port_min;
    mc.port_max = d.port_max;
    mc.health = d.health;
    mc.max_concurrent = d.max_concurrent;
    mc.startup_timeout = d.startup_timeout;
    mc.stop_timeout = d.stop_timeout;
    mc.drain_timeout = d.drain_timeout;
    mc.idle_timeout = d.idle_timeout;
    mc.connect_timeout = d.connect_timeout;
    mc.first_token_timeout = d.first_token_timeout;
    mc.stall_timeout = d.stall_timeout;
    mc.request_timeout = d.request_timeout;
    mc.queue_timeout = d.queue_timeout;
    mc.log_max_size = d.log_max_size;
    mc.log_keep = d.log_keep;
    return mc;
}

const ModelConfig* Config::find(const std::string& name) const {
    auto it = models.find(name);
    return it == models.end() ? nullptr : &it->second;
}

std::vector<std::string> Config::model_names() const {
    std::vector<std::string> out;
    for (auto& [k, _] : models) out.push_back(k);
    return out;
}

std::vector<std::string> check_paths(const Config& cfg) {
    std::vector<std::string> problems;
    for (const auto& [name, m] : cfg.models) {
        if (m.cwd.empty() || m.cwd.find("{port}") != std::string::npos || m.cwd.find("{host}") != std::string::npos) continue;
        std::string dir = expand_placeholders(m.cwd, m.host, 0, m.name);
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0)
            problems.push_back(fmt::format("{}: \"cwd\" of model \"{}\": {}: {}", m.cwd_at, name, dir, std::strerror(errno)));
        else if (!S_ISDIR(st.st_mode))
            problems.push_back(fmt::format("{}: \"cwd\" of model \"{}\": {} is not a directory", m.cwd_at, name, dir));
    }
    return problems;
}

bool valid_health(const std::string& health) { return health == "tcp" || (!health.empty() && health[0] == '/'); }

bool valid_model_name(const std::string& name) {
    if (name.empty() || name.size() > 64) return false;
    if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
    return name.find("..") == std::string::npos;
}

Config parse_config(const std::string& text, const std::string& source) {
    return Parser(source).parse(text);
}

Config load_config_file(const std::string& path) {
    auto text = read_file(path);
    if (!text)
        throw Error(Exit::config, fmt::format("cannot read config {}: {}", path, std::strerror(errno)),
                    "check the path given by --config or $LLMCTL_CONFIG");
    return parse_config(*text, path);
}

Config builtin_config() {
    std::string mock = bundled_mock_server();
    Config cfg;
    cfg.source = "<built-in>";
    ModelConfig mc = model_from_defaults(cfg.defaults, "echo");
    mc.command = {mock, "--host", "{host}", "--port", "{port}"};
    mc.max_concurrent = 4;
    mc.startup_timeout = Millis(30'000);
    cfg.models["echo"] = mc;
    return cfg;
}

std::string resolve_config_path(const std::string& cli) {
    if (!cli.empty()) return cli;
    if (const char* e = std::getenv("LLMCTL_CONFIG"); e && *e) return e;
    std::string dir;
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) dir = x;
    else if (const char* h = std::getenv("HOME"); h && *h) dir = std::string(h) + "/.config";
    if (dir.empty()) return {};
    std::string p = dir + "/llmctl/config.toml";
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? p : std::string();
}

Config load_config(const std::string& cli_path) {
    std::string p = resolve_config_path(cli_path);
    return p.empty() ? builtin_config() : load_config_file(p);
}

CleanupConfig load_config_for_cleanup(const std::string& cli_path) {
    CleanupConfig out;
    try {
        out.config = load_config(cli_path);
    } catch (const Error& e) {
        if (e.code() != Exit::config) throw;
        out.config = Config{};
        out.config.source = resolve_config_path(cli_path);
        out.problem = e.what();
    }
    return out;
}

std::string expand_placeholders(const std::string& s, const std::string& host, int port, const std::string& name) {
    std::string out = s;
    if (out == "~" || out.rfind("~/", 0) == 0) {
        const char* h = std::getenv("HOME");
        if (h) out = std::string(h) + out.substr(1);
    }
    out = replace_all(out, "{host}", host);
    out = replace_all(out, "{port}", std::to_string(port));
    out = replace_all(out, "{name}", name);
    return out;
}

std::string config_hash(const ModelConfig& m) {
    std::string all;
    for (auto& a : m.command) all += a + '\0';
    all += '\1';
    for (auto& [k, v] : m.env) all += k + '=' + v + '\0';
    all += '\1' + m.cwd + '\1' + m.health;
    // FNV-1a 64: stable across builds and platforms, enough to spot a changed entry.
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : all) { h ^= c; h *= 1099511628211ull; }
    return fmt::format("{:016x}", h);
}

} // namespace llmctl
