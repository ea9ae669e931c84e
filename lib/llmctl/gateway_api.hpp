#pragma once
// serve's web dashboard and the JSON API it calls (issue 22), answered on a request thread:
//   GET  /ui                             the page (one static file, no key: its calls carry one)
//   GET  /api/status                     models (configured, and running ad-hoc servers) with
//                                        status, slots, memory, tokens/s, last exit; pools; gateways
//   GET  /api/events?after=ID&limit=N    events after ID, oldest first
//   GET  /api/logs/NAME?lines=N          the log's last N lines, then its new output as it is
//                                        written (text/plain, chunked) until the client goes
//   POST /api/models/NAME/start|stop|restart   what `llmctl start|stop|restart NAME` does
// The API needs the key like every route but /health and /ui (the gateway checks it first), and
// a browser's request passes the Origin check (its own origin, or [serve] cors_origins).

#include "llmctl/client_connection.hpp"
#include "llmctl/config.hpp"

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmctl {

// /ui (or /ui/): the page, which needs no key.
bool is_dashboard_page(std::string_view path);
// /api/...: the API.
bool is_api_target(std::string_view path);

struct ApiOutcome {
    int status = 0;
    std::uint64_t bytes = 0;
    std::string error;
};

// Answers GET /ui.
ApiOutcome answer_dashboard(ClientConnection& c, const std::vector<ClientConnection::Header>& headers);

// Answers an /api/ request (`target` with its query). `stopping`: the gateway stops (a followed
// log ends).
ApiOutcome answer_api(std::string_view method, std::string_view target, ClientConnection& c, const std::string& state_dir,
                      const Config& config, const std::atomic<bool>& stopping, const std::vector<ClientConnection::Header>& headers);

} // namespace llmctl
