// llmctl apply: bring what runs in line with the config file (restart changed models, stop removed
// ones, start preload ones), printing the plan first.

#include "commands.hpp"
#include "progress.hpp"

#include "llmctl/apply.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/json_text.hpp"
#include "llmctl/paths.hpp"

#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>

namespace llmctl::cli {

namespace {

nlohmann::json step_json(const ApplyStep& s, bool dry_run) {
    nlohmann::json j{{"action", apply_verb(s.kind)}, {"name", s.name}, {"why", s.why}, {"dry_run", dry_run}};
    if (!dry_run) j["ok"] = s.ok, j["result"] = s.result;
    return j;
}

void print_plan(const ApplyPlan& plan, const Config& cfg) {
    std::cout << fmt::format("apply {}:\n", cfg.source);
    std::size_t width = 0;
    for (const auto& s : plan.steps) width = std::max(width, s.name.size());
    for (const auto& s : plan.steps) std::cout << fmt::format("  {:<8} {:<{}}  {}\n", apply_verb(s.kind), s.name, width, s.why);
    std::cout << fmt::format("{} change{}; {} server{} unchanged{}\n", plan.steps.size(), plan.steps.size() == 1 ? "" : "s", plan.unchanged,
                             plan.unchanged == 1 ? "" : "s",
                             plan.foreign ? fmt::format("; {} ad-hoc or other config's left alone", plan.foreign) : "");
}

} // namespace

std::function<int()> setup_apply(CLI::App& app, Globals& g) {
    struct Opts {
        bool dry_run = false, json = false;
    };
    auto o = std::make_shared<Opts>();
    app.add_flag("-n,--dry-run", o->dry_run, "Print the plan; change nothing");
    app.add_flag("--json", o->json, "Print the steps as a JSON array (with each outcome unless --dry-run)");
    app.footer("Compares the config file with the servers started from it: a model whose command, env, cwd,\n"
               "health, host or fixed port changed is restarted (chats in flight finish first, up to\n"
               "drain_timeout), a server whose model left the file is stopped, preload models that do not\n"
               "run are started, and models held down by a stop are let go. Ad-hoc servers and servers\n"
               "of another config file are never touched. Prints the plan first; exit 1 if a step failed.\n"
               "Examples:\n  llmctl apply --dry-run\n  llmctl config check && llmctl apply\n");
    return [o, &g]() -> int {
        Config cfg = load_config(g.config_path);
        std::string dir = resolve_state_dir(g.state_dir);
        ApplyPlan plan = plan_apply(dir, cfg);
        if (!o->json && g.verbosity >= 0) print_plan(plan, cfg);
        if (o->dry_run) {
            if (o->json) {
                nlohmann::json arr = nlohmann::json::array();
                for (const auto& s : plan.steps) arr.push_back(step_json(s, true));
                std::cout << json_text(arr, 2) << "\n";
            } else if (g.verbosity >= 0) {
                std::cout << "dry run: nothing changed\n";
            }
            return 0;
        }
        int failed = 0;
        run_apply(
            dir, cfg, plan,
            [&](const ApplyStep& s) {
                failed += s.ok ? 0 : 1;
                if (!o->json && g.verbosity >= 0)
                    std::cout << fmt::format("{} {}: {}{}\n", apply_verb(s.kind), s.name, s.ok ? "" : "FAILED: ", s.result);
            },
            notifier(g));
        if (o->json) {
            nlohmann::json arr = nlohmann::json::array();
            for (const auto& s : plan.steps) arr.push_back(step_json(s, false));
            std::cout << json_text(arr, 2) << "\n";
        }
        if (failed)
            std::cerr << fmt::format("llmctl: apply: {} of {} step{} failed\n", failed, plan.steps.size(),
                                     plan.steps.size() == 1 ? "" : "s");
        return failed ? static_cast<int>(Exit::failure) : 0;
    };
}

} // namespace llmctl::cli
