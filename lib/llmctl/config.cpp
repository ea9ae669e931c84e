#include "llmctl/config.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/files.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/strings.hpp"

#include <climits>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llmctl {

ModelConfig model_from_defaults(const Defaults& d, const std::string& name) {
    ModelConfig mc;
    static_cast<Settings&>(mc) = d;
    mc.name = mc.model = name;
    return mc;
}

const ModelConfig* Config::find(const std::string& name) const {
    auto it = models.find(name);
    return it == models.end() ? nullptr : &it->second;
}

const PoolConfig* Config::pool_of(const ModelConfig& m) const {
    if (m.pool.empty() || m.external() || m.adhoc) return nullptr;
    auto it = pools.find(m.pool);
    return it == pools.end() ? nullptr : &it->second;
}

std::vector<std::string> Config::model_names() const {
    std::vector<std::string> out;
    for (auto& [k, _] : models) out.push_back(k);
    return out;
}

std::vector<std::string> check_paths(const Config& cfg) {
    std::vector<std::string> problems;
    for (const auto& [name, m] : cfg.models) {
        using File = std::pair<const char*, const std::string*>; // an https url's files
        for (const auto& [key, file] :
             {File{"ca_file", &m.ca_file}, File{"client_cert", &m.client_cert}, File{"client_key", &m.client_key}})
            if (!file->empty() && ::access(file->c_str(), R_OK) != 0)
                problems.push_back(fmt::format("{}: \"{}\" of model \"{}\": {}: {}", m.at, key, name, *file, std::strerror(errno)));
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

Config load_config_file(const std::string& path) {
    auto text = read_file(path);
    if (!text)
        throw Error(Exit::config, fmt::format("cannot read config {}: {}", path, std::strerror(errno)),
                    "check the path given by --config or $LLMCTL_CONFIG");
    Config cfg = parse_config(*text, path);
    char real[PATH_MAX];
    cfg.origin = ::realpath(path.c_str(), real) ? std::string(real) : path;
    for (auto& [name, m] : cfg.models) m.origin = cfg.origin;
    return cfg;
}

Config builtin_config() {
    std::string mock = bundled_mock_server();
    Config cfg;
    cfg.source = cfg.origin = "<built-in>";
    ModelConfig mc = model_from_defaults(cfg.defaults, "echo");
    mc.command = {mock, "--host", "{host}", "--port", "{port}"};
    mc.max_concurrent = 4;
    mc.startup_timeout = Millis(30'000);
    mc.origin = cfg.origin;
    cfg.models["echo"] = mc;
    return cfg;
}

std::string resolve_config_path(const std::string& cli) {
    if (!cli.empty()) return cli;
    if (const char* e = std::getenv("LLMCTL_CONFIG"); e && *e) return e;
    std::string dir;
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x)
        dir = x;
    else if (const char* h = std::getenv("HOME"); h && *h)
        dir = std::string(h) + "/.config";
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

namespace {

// FNV-1a 64: stable across builds and platforms, enough to spot a changed entry.
std::string fnv1a(const std::string& all) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : all) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return fmt::format("{:016x}", h);
}

std::string command_text(const ModelConfig& m) {
    std::string all;
    for (auto& a : m.command) all += a + '\0';
    all += '\1';
    for (auto& [k, v] : m.env) all += k + '=' + v + '\0';
    all += '\1' + m.cwd + '\1' + m.health;
    return all;
}

} // namespace

std::string config_hash(const ModelConfig& m) {
    return fnv1a(command_text(m) + '\1' + m.host + '\1' + (m.port ? std::to_string(*m.port) : std::string("auto")));
}

std::string footprint_hash(const ModelConfig& m) { return fnv1a(command_text(m)); }

std::string external_api_key(const ModelConfig& m) {
    if (m.api_key_env.empty()) return {};
    const char* key = std::getenv(m.api_key_env.c_str());
    if (!key || !*key)
        throw Error(Exit::config, fmt::format("model \"{}\" needs an API key in ${}, which is not set", m.name, m.api_key_env));
    return key;
}

Url external_url(const ModelConfig& m) {
    Url u = parse_url(m.url);
    if (u.https) u.tls = TlsSettings{m.ca_file, m.client_cert, m.client_key, m.tls_verify};
    u.headers.assign(m.headers.begin(), m.headers.end());
    return u;
}

std::string unverified_tls_warning(const ModelConfig& m) {
    if (m.tls_verify || !m.url.starts_with("https://")) return {};
    return fmt::format("llmctl: warning: model \"{}\" has tls_verify = false: its server's certificate is not checked, so anyone "
                       "between here and {} can read and change what is sent\n",
                       m.name, m.url);
}

} // namespace llmctl
