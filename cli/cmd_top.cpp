// llmctl top: a full-screen view refreshing every second (servers, slots, memory, tokens/s, last
// exits, pools, gateways, events), drawn by the llmctl-top program this command becomes, so that
// llmctl itself maps no terminal library. Refreshing takes no lock and writes nothing.

#include "commands.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/units.hpp"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <unistd.h>

namespace llmctl::cli {

std::function<int()> setup_top(CLI::App& app, Globals& g) {
    struct Opts {
        std::string interval;
        bool once = false;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("-d,--interval", o->interval, "Refresh every DUR (default 1s; 100ms to 1d)")->type_name("DUR");
    app.add_flag("--once", o->once, "Print the view once as text and exit (as on a dumb terminal or a pipe)");
    app.footer("Keys: q quit, up/down (or k/j) select a server, o change the sort (name, status, tokens/s,\n"
               "memory), s stop or r restart the selected server (y confirms, any other key cancels).\n"
               "TOK/S: tokens out per second of the requests that ended in the last minute.\n"
               "NO_COLOR turns colour off; TERM=dumb or a stdout that is not a terminal gets the view as\n"
               "text every DUR. No lock, no writes, but for a confirmed stop or restart (llmctl-top(1)).\n"
               "Exit status: 0 after q; 130 after Ctrl-C.\n"
               "Examples:\n  llmctl top\n  llmctl top --once | grep running\n");
    return [o, &g]() -> int {
        Millis every = o->interval.empty() ? Millis(1000) : duration_flag("--interval", o->interval);
        if (every < Millis(100)) throw Error(Exit::usage, fmt::format("--interval {} is too short", o->interval), "give 100ms or more");
        if (every > Millis(86'400'000)) throw Error(Exit::usage, fmt::format("--interval {} is too long", o->interval), "give 1d or less");
        const std::string view = bundled_top_view();
        if (::access(view.c_str(), X_OK) != 0)
            throw Error(Exit::failure, fmt::format("cannot show top: {} is missing", view),
                        "llmctl-top is installed beside llmctl (or in ../libexec/llmctl/): reinstall llmctl");
        std::vector<std::string> args = {
            view, "--llmctl", self_exe(), "--state-dir", resolve_state_dir(g.state_dir), "--interval", std::to_string(every.count())};
        if (!g.config_path.empty()) args.insert(args.end(), {"--config", g.config_path});
        if (o->once) args.push_back("--once");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(view.c_str(), argv.data());
        throw Error(Exit::failure, fmt::format("cannot run {}: {}", view, std::strerror(errno)));
    };
}

} // namespace llmctl::cli
