#include "llmctl/model_routes.hpp"

#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"
#include "llmctl/strings.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace llmctl {

const ModelConfig* route_model(const Config& cfg, const std::string& requested) {
    if (const ModelConfig* m = cfg.find(requested)) return m;
    for (const auto& [name, m] : cfg.models)
        if (m.model == requested || std::find(m.aliases.begin(), m.aliases.end(), requested) != m.aliases.end()) return &m;
    return nullptr;
}

std::string unknown_model_message(const Config& cfg, const std::string& requested) {
    std::vector<std::string> names;
    for (const auto& [name, m] : cfg.models) {
        names.push_back(name);
        for (const auto& a : m.aliases) names.push_back(a);
    }
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    return fmt::format("the model \"{}\" does not exist{}; models: {}", requested, did_you_mean_suffix(requested, names),
                       list.empty() ? "none configured" : list);
}

std::string upstream_model_name(const ModelConfig& m) { return m.model.empty() ? m.name : m.model; }

namespace {

std::string status_of(const ModelConfig& m, Store* store) {
    if (m.external()) return "external";
    if (!store) return "stopped";
    auto row = find_server(*store, m.name);
    if (!row) return "stopped";
    if (row->status == "running" && !is_alive(row->server)) return "dead";
    return row->status;
}

} // namespace

nlohmann::json models_list(const Config& cfg, const std::string& state_dir) {
    std::optional<Store> store;
    if (check_state_dir(state_dir)) store = Store::open_read(state_db_path(state_dir));
    auto data = nlohmann::json::array();
    for (const auto& [name, m] : cfg.models)
        data.push_back({{"id", name},
                        {"object", "model"},
                        {"created", 0},
                        {"owned_by", "llmctl"},
                        {"llmctl",
                         {{"status", status_of(m, store ? &*store : nullptr)},
                          {"kind", m.external() ? "external" : "managed"},
                          {"aliases", m.aliases}}}});
    return {{"object", "list"}, {"data", data}};
}

} // namespace llmctl
