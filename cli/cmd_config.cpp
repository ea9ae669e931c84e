// llmctl config check|show: validate and print the resolved configuration.

#include "commands.hpp"
#include "output.hpp"

#include "llmctl/admission.hpp"
#include "llmctl/address.hpp"
#include "llmctl/json_text.hpp"
#include "llmctl/config.hpp"
#include "llmctl/config_keys.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/units.hpp"

#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>

namespace llmctl::cli {

namespace {

std::string summary_line(const ModelConfig& m) {
    if (m.external()) return fmt::format("{}: external {} (model \"{}\", {} slot(s))", m.name, m.url, m.model, m.max_concurrent);
    std::string port = m.port ? std::to_string(*m.port) : fmt::format("{}-{}", m.port_min, m.port_max);
    return fmt::format("{}: runs {} on {}:{} (health {}, {} slot(s), startup {})", m.name, m.command[0], url_host(m.host), port, m.health,
                       m.max_concurrent, format_duration(m.startup_timeout));
}

} // namespace

std::function<int()> setup_config(CLI::App& app, Globals& g) {
    app.require_subcommand(1);
    auto* check = app.add_subcommand("check", "Validate the config and print one line per model");
    auto* show = app.add_subcommand("show", "Print the resolved config (all defaults filled in)");
    auto json = std::make_shared<bool>(false);
    auto names_only = std::make_shared<bool>(false);
    auto* json_flag = show->add_flag("--json", *json, "Print JSON: every key of [defaults] and of each model, resolved");
    json_flag->excludes(show->add_flag("--names", *names_only, "Print model names only, one per line (for completions)"));
    app.footer("Examples:\n  llmctl config check\n  llmctl --config ./my.toml config show --json\n");
    return [&app, check, show, json, names_only, &g]() -> int {
        Config cfg = load_config(g.config_path);
        if (app.got_subcommand(check)) {
            auto problems = check_paths(cfg);
            for (auto& p : check_pool_memory(cfg)) problems.push_back(std::move(p));
            if (!problems.empty()) {
                for (std::size_t i = 0; i + 1 < problems.size(); ++i) print_error(problems[i]);
                throw Error(Exit::config, problems.back(),
                            "fix what each line names: a relative cwd is relative to the config file; memory = \"auto\" reads the "
                            "GGUF file of the command's -m (llmctl.toml(5), MEMORY)");
            }
            if (g.verbosity >= 0) std::cerr << fmt::format("{}: ok, {} model(s)\n", cfg.source, cfg.models.size());
            for (auto& [_, m] : cfg.models) std::cout << summary_line(m) << "\n";
            return 0;
        }
        (void)show;
        if (*names_only) {
            for (auto& [name, _] : cfg.models) std::cout << name << "\n";
            return 0;
        }
        nlohmann::json j = {{"source", cfg.source}, {"models", nlohmann::json::object()}};
        j["defaults"] = defaults_json(cfg.defaults);
        j["serve"] = serve_json(cfg.serve);
        j["pools"] = nlohmann::json::object();
        for (auto& [name, p] : cfg.pools) j["pools"][name] = pool_json(p);
        for (auto& [name, m] : cfg.models) j["models"][name] = model_json(m);
        if (*json) {
            std::cout << json_text(j, 2) << "\n";
        } else {
            std::cout << "# source: " << cfg.source << "\n";
            for (auto& [name, m] : cfg.models) {
                std::cout << summary_line(m) << "\n";
                if (!m.external()) {
                    std::cout << "  command:";
                    for (auto& a : m.command) std::cout << " " << a;
                    std::cout << "\n";
                }
            }
        }
        return 0;
    };
}

} // namespace llmctl::cli
