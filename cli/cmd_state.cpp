// llmctl state init: create or upgrade the state file under the state lock.

#include "commands.hpp"

#include "llmctl/paths.hpp"
#include "llmctl/store.hpp"

#include <fmt/format.h>
#include <iostream>

namespace llmctl::cli {

std::function<int()> setup_state(CLI::App& app, Globals& g) {
    app.require_subcommand(1);
    auto* init = app.add_subcommand("init", "Create the state dir and file, or migrate it to this version's schema");
    auto* path = app.add_subcommand("path", "Print the state dir in force");
    app.footer("Examples:\n  llmctl state init\n  llmctl --state-dir /tmp/s state path\n");
    return [&app, init, path, &g]() -> int {
        std::string dir = resolve_state_dir(g.state_dir);
        if (app.got_subcommand(path)) {
            std::cout << dir << "\n";
            return 0;
        }
        (void)init;
        ensure_state_dir(dir);
        int version = init_state_file(dir);
        if (g.verbosity >= 0) std::cerr << fmt::format("{}: schema version {}\n", state_db_path(dir), version);
        return 0;
    };
}

} // namespace llmctl::cli
