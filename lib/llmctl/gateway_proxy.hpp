#pragma once
// One model request through `llmctl serve`: a lease taken on arrival, the model started if need
// be (through start_server, as `llmctl start`), the slot waited for, the body relayed to the
// model's server and its answer back to the client as it arrives; the lease held until the
// answer ends, whatever ends it.

#include "llmctl/client_connection.hpp"
#include "llmctl/config.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace llmctl {

struct KeptConnection;

struct ProxyCall {
    const ModelConfig* model = nullptr;
    const Config* config = nullptr; // the model's (its pool, for a start that needs memory)
    std::string method = "POST";    // POST or GET
    std::string upstream_path;      // "/v1/chat/completions", ..., or /upstream/'s path with its query
    std::string body;               // /v1/*: with "model" already rewritten to the upstream name
    std::string content_type;       // the body's ("" = application/json)
    std::string accept;             // what the client accepts ("" = SSE or JSON)
    bool stream = false;            // the client asked for SSE: loading comments while the model starts
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
    std::string error;      // "" when the answer was relayed whole
    bool accounted = false; // a request for a configured model that token accounting counts (not a GET through /upstream/)
    bool cancelled = false; // the client went before its answer ended
    // Token accounting (token_tally.hpp): of a relayed 2xx answer, however it ended.
    std::optional<std::chrono::steady_clock::time_point> first_token_at;
    std::optional<std::int64_t> tokens_in;
    std::int64_t tokens_out = 0;
    bool tokens_counted = false;
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

// A model call the quick way, on its client connection's event loop (serve's common case: a
// running model, a free slot): the slot taken through the broker (or handed on by the request
// before, a spare), the request written at once (once connected, on a new connection), the answer
// moved as it comes, with no thread waiting for any of it. A call that needs anything else (a
// start, a queue, a retry) is declined before a byte of the answer was written; the caller then
// makes it the waiting way (proxy_call, on a thread). The slot and the model server's connection
// go back when the call is destroyed (the connection first, kept when its answer ended whole; the
// caller stops watching it before). Every call but ask_for_slot's `answered` is made on the loop's
// thread.
class QuickCall {
public:
    enum class State {
        asking,   // the broker has the slot's step
        relaying, // the request went; the answer comes
        ended,    // answered (whole, or with the failure told): what the client holds back is the caller's to flush
        declined, // go the waiting way
    };
    // `kept`: the caller's connection to a model server, kept from its last request; the call
    // takes it when its server is the one the slot names.
    QuickCall(const std::string& state_dir, const ProxyCall& call, const ProxyLimits& limits, ClientConnection& client,
              KeptConnection* kept = nullptr);
    ~QuickCall();
    QuickCall(const QuickCall&) = delete;
    QuickCall& operator=(const QuickCall&) = delete;

    State state() const;
    // The slot of a quick request of the same model that has just ended, when there is one:
    // slot_answered follows at once.
    bool take_spare();
    // Hands the slot's step to the broker; `answered` runs on the broker's thread once it is
    // decided, and must have slot_answered called on the loop.
    void ask_for_slot(std::function<void()> answered);
    void slot_answered();
    // While relaying: the model server's socket, read while the client takes what it is given;
    // while the client holds bytes back, its socket is waited on for room instead.
    int upstream_fd() const;
    // The model server's socket is a new connection's, waited on for room (EPOLLOUT) until connected.
    bool upstream_connecting() const;
    bool client_pending() const;
    void upstream_ready();
    void client_ready(std::uint32_t events); // room (EPOLLOUT) or a hangup
    std::chrono::steady_clock::time_point deadline() const;
    void deadline_passed();
    const ProxyOutcome& outcome() const;
    // Once ended with the model server's answer whole: its connection, for the caller to keep
    // (false when it cannot be kept; it is closed then, or kept in the process's pool).
    bool keep_connection(KeptConnection& into);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Serves one request for a model; a start it needs is shared with this process's other requests
// through `starts`. The upstream's status, content type and body go back as they arrive; a
// failure after the answer began is an SSE error event when the answer is SSE, else the
// connection is cut (the client sees a truncated body).
ProxyOutcome proxy_call(const std::string& state_dir, const ProxyCall& call, const ProxyLimits& limits, SharedStarts& starts,
                        ClientConnection& client);

} // namespace llmctl
