// llmctl reap: what cron runs. Silent and exit 0 when there is nothing to do.

#include "commands.hpp"

#include "llmctl/json_text.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/reap.hpp"
#include "llmctl/recovery.hpp"

#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>

namespace llmctl::cli {

std::function<int()> setup_reap(CLI::App& app, Globals& g) {
    struct Opts {
        bool dry_run = false, json = false, rebuild = false;
        std::string idle_timeout;
    };
    auto o = std::make_shared<Opts>();
    auto* dry_run = app.add_flag("-n,--dry-run", o->dry_run, "Say what would be done; change nothing");
    app.add_option("--idle-timeout", o->idle_timeout, "Stop servers unused for longer than DUR (overrides idle_timeout)")->type_name("DUR");
    app.add_flag("--json", o->json, "Print a JSON array of actions ([] when none)");
    app.add_flag("--rebuild", o->rebuild,
                 "If the state file is unreadable, move it aside (with -wal/-shm) and rebuild it from the running servers")
        ->excludes(dry_run);
    app.footer("Clears rows of dead servers, finishes starts/stops whose llmctl died, kills orphans\n"
               "(processes marked with this state dir and no live row: TERM, then KILL after stop_timeout),\n"
               "stops idle servers, reclaims chat slots of dead clients, rotates big logs.\n"
               "Prints one line per action and nothing when there was nothing to do (cron mails only news).\n"
               "Examples:\n  llmctl reap\n  llmctl reap --dry-run -v\n  * * * * * llmctl reap -q     # crontab\n");
    return [o, &g]() -> int {
        std::optional<Millis> idle;
        if (!o->idle_timeout.empty()) {
            idle = duration_flag("--idle-timeout", o->idle_timeout); // 0: none, so no server is idle
        }
        CleanupConfig loaded = load_config_for_cleanup(g.config_path);
        std::string dir = resolve_state_dir(g.state_dir);
        std::vector<ReapAction> actions;
        if (o->rebuild) {
            std::vector<std::string> names;
            std::string moved = rebuild_state(dir, &names);
            if (!moved.empty()) actions.push_back({"moved_aside", "", 0, fmt::format("unreadable state file kept as {}", moved)});
            for (auto& n : names) actions.push_back({"rebuilt", n, 0, "row rebuilt from the server's markers"});
        }
        ReapOptions ro;
        ro.dry_run = o->dry_run;
        ro.idle_timeout = idle;
        ro.config_ok = loaded.ok();
        auto report = reap(dir, loaded.config, ro);
        actions.insert(actions.end(), report.actions.begin(), report.actions.end());
        // Warnings go to stderr even with -q: cron mails them, and they mean something is wrong.
        if (!loaded.ok()) report.warnings.insert(report.warnings.begin(), fmt::format("the config cannot be used ({})", loaded.problem));
        for (auto& w : report.warnings) std::cerr << "llmctl: warning: reap: " << w << "\n";
        if (o->json) {
            nlohmann::json arr = nlohmann::json::array();
            for (auto& a : actions)
                arr.push_back({{"action", a.kind}, {"name", a.name}, {"pid", a.pid}, {"detail", a.detail}, {"dry_run", o->dry_run}});
            std::cout << json_text(arr, 2) << "\n";
            return 0;
        }
        if (g.verbosity < 0) return 0;
        for (auto& a : actions) {
            std::string who = a.name.empty() ? "" : " " + a.name;
            std::string pid = a.pid ? fmt::format(" (pid {})", a.pid) : "";
            std::cout << fmt::format("{}{}{}{}: {}\n", o->dry_run ? "would " : "", a.kind == "reaped" && o->dry_run ? "reap" : a.kind, who,
                                     pid, a.detail);
        }
        if (g.verbosity > 0)
            std::cerr << fmt::format("llmctl: reap{}: {} action(s) in {}\n", o->dry_run ? " (dry run)" : "", actions.size(), dir);
        return 0;
    };
}

} // namespace llmctl::cli
