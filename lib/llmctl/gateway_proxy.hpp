#pragma once
// One model request through `llmctl serve`: a lease taken on arrival, the model started if need
// be (through start_server, as `llmctl start`), the slot waited for, the body relayed to the
// model's server and its answer back to the client as it arrives; the lease held until the
// answer ends, whatever ends it.

#include "llmctl/client_connection.hpp"
#include "llmctl/config.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace llmctl {

struct ProxyCall {
    const ModelConfig* model = nullptr;
    std::string method = "POST"; // POST or GET
    std::string upstream_path;   // "/v1/chat/completions", ..., or /upstream/'s path with its query
    std::string body;            // /v1/*: with "model" already rewritten to the upstream name
    std::string content_type;    // the body's ("" = application/json)
    std::string accept;          // what the client accepts ("" = SSE or JSON)
    bool stream = false;         // the client asked for SSE: loading comments while the model starts
    // false: a GET through /upstream/: no lease, no start, no queue; 503 when the model's server
    // is not running.
    bool takes_lease = true;
    // Headers every answer to the client carries, relayed or made here (CORS for an allowed origin).
    std::vector<ClientConnection::Header> headers;
};

// What the access log says of a call.
struct ProxyOutcome {
    int status = 0;
    std::chrono::milliseconds queue_wait{0}, first_byte{0};
    std::uint64_t bytes = 0;
    std::string error; // "" when the answer was relayed whole
};

class LeaseWatch;
class LeaseBroker;
class RelayPump;

struct ProxyLimits {
    int max_inflight = 0;
    int max_queue = 64;
    LeaseWatch* watch = nullptr;   // the process's lease watcher (slots.hpp)
    LeaseBroker* broker = nullptr; // and its lease broker
    RelayPump* pump = nullptr;     // moves a body once its next piece is not at hand (nullptr: this thread waits for each)
};

class SharedStarts;

// Serves one request for a model; a start it needs is shared with this process's other requests
// through `starts`. The upstream's status, content type and body go back as they arrive; a
// failure after the answer began is an SSE error event when the answer is SSE, else the
// connection is cut (the client sees a truncated body).
ProxyOutcome proxy_call(const std::string& state_dir, const ProxyCall& call, const ProxyLimits& limits, SharedStarts& starts,
                        ClientConnection& client);

} // namespace llmctl
