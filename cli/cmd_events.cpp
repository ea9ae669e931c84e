// llmctl events: what happened to the servers (spawned, ready, evicted, restarted, wedged, …), as
// lines a person reads or JSON lines; -f follows. Takes no lock and writes nothing.

#include "commands.hpp"
#include "output.hpp"

#include "llmctl/clock_text.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/events_feed.hpp"
#include "llmctl/json_text.hpp"
#include "llmctl/names.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"

#include <ctime>
#include <fmt/format.h>
#include <unistd.h>

namespace llmctl::cli {

namespace {

std::string event_line(const EventRow& e, bool json) {
    if (json)
        return json_text(nlohmann::json{{"id", e.id},
                                        {"at", e.at},
                                        {"time", clock_text_ms(e.at, Zone::utc)},
                                        {"server", e.server.empty() ? nlohmann::json() : nlohmann::json(e.server)},
                                        {"kind", e.kind},
                                        {"detail", e.detail}}) +
               "\n";
    return fmt::format("{}  {:<12} {:<16} {}\n", clock_text_ms(e.at, Zone::local), e.server.empty() ? "-" : e.server, e.kind, e.detail);
}

} // namespace

std::function<int()> setup_events(CLI::App& app, Globals& g) {
    struct Opts {
        std::vector<std::string> names;
        bool follow = false, json = false;
        std::string since;
        std::optional<int> lines;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("name", o->names, "Only the events of these servers")->type_name("NAME");
    app.add_flag("-f,--follow", o->follow, "Keep printing events as they are recorded, until Ctrl-C");
    app.add_flag("--json", o->json, "One JSON object a line: id, at (ms), time (UTC), server, kind, detail");
    app.add_option("--since", o->since, "Only events of the last DUR (e.g. 10m, 2h)")->type_name("DUR");
    app.add_option("-n,--lines", o->lines, "Only the last N events (with -f: then the new ones)")
        ->type_name("N")
        ->check(integer_between(0, 1'000'000'000));
    app.footer("Events: spawned, ready, stopped, reaped, evicted, exited, restarting, failed, wedged, held,\n"
               "released, lease_reclaimed, orphan_killed and more; the state file keeps the latest ones\n"
               "(llmctl-events(1)). No lock, no writes.\n"
               "Exit status: 0; 130 after Ctrl-C with -f.\n"
               "Examples:\n  llmctl events -n 20\n  llmctl events -f echo\n  llmctl events --since 1h --json | jq .kind\n");
    return [o, &g]() -> int {
        for (auto& n : o->names)
            if (!valid_model_name(n)) throw Error(Exit::usage, fmt::format("bad server name \"{}\"", n), "names are like echo or phi-4");
        EventQuery q;
        q.names = o->names;
        if (!o->since.empty()) q.since = now_ms() - duration_flag("--since", o->since).count();
        q.last = o->lines;
        std::string dir = resolve_state_dir(g.state_dir);
        try {
            auto print = [&](const EventRow& e) { write_stdout(event_line(e, o->json)); };
            if (!o->follow) {
                for (const auto& e : read_events(dir, q)) print(e);
                return 0;
            }
            auto end = follow_events(dir, q, STDOUT_FILENO, print); // (what is recorded now, then what comes)
            return end == FollowEnd::interrupted ? static_cast<int>(Exit::interrupted) : 0;
        } catch (const StdoutClosed&) {
            return 0;
        }
    };
}

} // namespace llmctl::cli
