#pragma once
// `llmctl serve` (ARCHITECTURE.md, "The gateway"): one OpenAI-compatible endpoint for every
// configured model. It keeps no state of its own: a request takes a lease in the state file like
// a chat, starts its model through start_server and is relayed to the model's server; killed at
// any moment, the gateway leaves nothing the next acquirer or reap does not reclaim.

#include "llmctl/client_connection.hpp"
#include "llmctl/config.hpp"
#include "llmctl/errors.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace llmctl {

// What a reload may change (SIGHUP, the config file changed): the config (routing, aliases,
// limits) and the [serve] settings taken from it and the flags. A request keeps the settings it
// arrived under until it ends.
struct GatewaySettings {
    std::shared_ptr<const Config> config;
    std::string api_key;                    // "" = no key asked
    std::vector<std::string> cors_origins;  // browser origins allowed ("*" allows any)
    std::vector<std::string> allowed_hosts; // more Host names than the listen address
    ReadLimits limits;
    Millis drain_timeout{30'000}; // on SIGTERM/SIGINT: how long requests in flight may finish
    int max_queue = 64;           // waiting leases per model beyond which a request gets 429
    Millis reap_every{30'000};    // the gateway runs reap this often; 0 = never
};

struct GatewayOptions {
    std::string state_dir;
    std::string listen_host = "127.0.0.1";
    int listen_port = 8080;
    GatewaySettings settings;
    // Polled every 100 ms: true stops the gateway (it stops accepting and drains).
    std::function<bool()> stop_requested;
    // Polled while draining: true cuts the requests in flight at once (a second Ctrl-C).
    std::function<bool()> stop_now;
    // Polled every 100 ms: true when the settings should be read again (then `reload` is called;
    // an Error it throws is logged and the settings in force stay).
    std::function<bool()> reload_requested;
    std::function<GatewaySettings()> reload;
    // Called once it listens, with the URL it answers on.
    std::function<void(const std::string& url)> on_ready;
    // One line per request (the access log) and per notable event; called from any thread, with
    // no lock held (a request thread's line must not wait for another's), with one line or
    // several (joined by '\n', under 4 KiB in all): it writes them whole, at once.
    std::function<void(const std::string&)> log;
};

// How a gateway ended.
struct GatewayEnd {
    // false: drain_timeout passed before the requests in flight finished (their threads still
    // run: the caller must end the process with _exit, not return from main).
    bool drained = true;
    // Set when the gateway stopped on its own because it cannot go on: a state file migrated by a
    // newer llmctl (Exit::newer_state, so that a supervisor runs the new binary).
    std::optional<Error> fatal;
};

// Listens and serves until stop_requested (or a newer llmctl migrates the state file), then lets
// the requests in flight finish. Throws Error(usage) when the address cannot be bound, and
// Error(newer_state) when the state file is already a newer llmctl's.
// Tells systemd (sd_notify) when it is ready, reloads and stops.
GatewayEnd run_gateway(const GatewayOptions& opts);

} // namespace llmctl
