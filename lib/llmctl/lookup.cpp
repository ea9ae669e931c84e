#include "llmctl/lookup.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"
#include "llmctl/json_text.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace llmctl {

namespace {

// The row of `name`, if the state file can be read and has one. A state file that cannot be read
// says nothing here (a mistyped model name stays "unknown model", exit 4, with its did-you-mean;
// the commands that need the file report it).
std::optional<ServerRow> row_of(const std::string& state_dir, const std::string& name) {
    try {
        if (!check_state_dir(state_dir)) return std::nullopt;
        if (auto store = Store::open_read(state_db_path(state_dir))) return find_server(*store, name);
    } catch (const Error&) {}
    return std::nullopt;
}

} // namespace

std::string model_spec_json(const ModelConfig& m) {
    return json_text(nlohmann::json{{"command", m.command}, {"health", m.health}, {"cwd", m.cwd}, {"env", m.env}, {"adhoc", m.adhoc}});
}

std::optional<ModelConfig> model_from_spec(const Defaults& d, const std::string& name, const std::string& spec_json) {
    auto j = nlohmann::json::parse(spec_json, nullptr, false);
    if (!j.is_object() || !j.contains("command") || !j["command"].is_array() || j["command"].empty()) return std::nullopt;
    ModelConfig m = model_from_defaults(d, name);
    try {
        m.command = j["command"].get<std::vector<std::string>>();
        m.health = j.value("health", m.health);
        m.cwd = j.value("cwd", std::string());
        m.env = j.value("env", std::map<std::string, std::string>());
    } catch (const nlohmann::json::exception&) {
        return std::nullopt; // a damaged row: not something llmctl wrote
    }
    m.adhoc = true;
    return m;
}

ModelConfig adhoc_model(const Config& cfg, const std::string& state_dir, const std::string& name, const std::vector<std::string>& command,
                        const std::string& health, const std::string& cwd) {
    if (cfg.find(name))
        throw Error(Exit::usage, fmt::format("\"{}\" is a model of {}: an ad-hoc server needs a name of its own", name, cfg.source),
                    fmt::format("start the configured one with: llmctl start {}; or give the command another name", name));
    if (!health.empty() && !valid_health(health))
        throw Error(Exit::usage, fmt::format("--health \"{}\" is neither an HTTP path nor \"tcp\"", health),
                    "give the path that answers 200 when the server is ready (--health /), or --health tcp to wait for the port");
    ModelConfig m = model_from_defaults(cfg.defaults, name);
    m.command = command;
    m.cwd = cwd;
    m.origin = cfg.origin;
    if (!health.empty()) m.health = health;
    m.adhoc = true;
    if (auto row = row_of(state_dir, name); row && row->status != "failed" && is_alive(row->server))
        if (auto running = model_from_spec(cfg.defaults, name, row->spec_json); running && running->command != command)
            throw Error(Exit::usage, fmt::format("{} already runs another command: {}", name, fmt::join(running->command, " ")),
                        fmt::format("stop it first (llmctl stop {}), or give this one another name", name));
    return m;
}

std::optional<ModelConfig> find_model(const Config& cfg, const std::string& state_dir, const std::string& name) {
    if (auto* m = cfg.find(name)) return *m;
    auto row = row_of(state_dir, name); // not in the config: an ad-hoc server of that name?
    if (!row || row->spec_json.empty()) return std::nullopt;
    return model_from_spec(cfg.defaults, name, row->spec_json);
}

} // namespace llmctl
