// llmctl state init: create or upgrade the state file under the state lock.

#include "commands.hpp"

#include "llmctl/lock.hpp"
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
        auto lock = FileLock::acquire(state_lock_path(dir), lock_timeout());
        Store store = Store::open_write(state_db_path(dir));
        if (g.verbosity >= 0) std::cerr << fmt::format("{}: schema version {}\n", store.path(), store.user_version());
        return 0;
    };
}

} // namespace llmctl::cli
