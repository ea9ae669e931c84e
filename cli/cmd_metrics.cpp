// llmctl metrics: the state's figures in Prometheus's text format (servers, slots, memory pools,
// and the counters of requests, tokens and events), for users without `serve` (whose GET
// /metrics has the same and more): to stdout, or to a file replaced atomically for
// node_exporter's textfile collector. Takes no lock and writes nothing to the state.

#include "commands.hpp"
#include "output.hpp"

#include "llmctl/config.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/files.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/state_metrics.hpp"

#include <fmt/format.h>
#include <iostream>

namespace llmctl::cli {

std::function<int()> setup_metrics(CLI::App& app, Globals& g) {
    struct Opts {
        std::string output;
    };
    auto o = std::make_shared<Opts>();
    app.add_option("-o,--output", o->output, "Write to FILE (replaced atomically: a reader never sees half of it) instead of stdout")
        ->type_name("FILE");
    app.footer("Metrics (llmctl-metrics(1)): llmctl_server_up, llmctl_server_status, llmctl_slots_active,\n"
               "llmctl_slots_queued, llmctl_slots_limit, llmctl_pool_budget_bytes, llmctl_pool_used_bytes,\n"
               "llmctl_requests_total, llmctl_tokens_total, llmctl_events_total and more.\n"
               "A config that cannot be read leaves out the slot limits and pool budgets (with a warning).\n"
               "No lock, no writes to the state.\n"
               "Exit status: 0; 1 when --output cannot be written or the state file cannot be read; 7 a newer\n"
               "llmctl's state file.\n"
               "Examples:\n  llmctl metrics | grep llmctl_slots\n"
               "  # cron, for node_exporter --collector.textfile.directory=/var/lib/prometheus/node-exporter:\n"
               "  * * * * * llmctl metrics -o /var/lib/prometheus/node-exporter/llmctl.prom\n");
    return [o, &g]() -> int {
        std::optional<Config> cfg;
        try {
            cfg = load_config(g.config_path);
        } catch (const Error& e) {
            std::cerr << fmt::format("llmctl: warning: the config cannot be used ({}); slot limits and pool budgets are left out\n",
                                     e.what());
        }
        PromText text;
        write_state_metrics(text, resolve_state_dir(g.state_dir), cfg ? &*cfg : nullptr);
        if (!o->output.empty()) {
            write_file_atomically(o->output, text.text());
            return 0;
        }
        try {
            write_stdout(text.text());
        } catch (const StdoutClosed&) {}
        return 0;
    };
}

} // namespace llmctl::cli
