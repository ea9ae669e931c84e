#pragma once
// A client connection of `llmctl serve` on an event loop (ARCHITECTURE.md, "The gateway"): its
// requests read as they come, what the gateway answers itself answered there, a model call made
// the quick way when it can (QuickCall), and a request that waits handed to a thread of its own
// (the connection comes back to a loop after its answer). No thread waits for an idle connection
// or for a model's answer.

#include "llmctl/client_connection.hpp"
#include "llmctl/gateway.hpp"
#include "llmctl/gateway_proxy.hpp"
#include "llmctl/request_guard.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace llmctl {

class PumpLoop;

// The settings in force, and the request guard's rules made of them: one immutable snapshot that
// a request holds from its first byte to its last, so a reload never changes a request midway.
struct GatewayPolicy {
    GatewaySettings settings;
    GuardRules rules;
    const Config& config() const { return *settings.config; }
};

// A request that waits (for its model's start, its turn in the queue, the state file, a server not
// on this machine), with its connection: a thread's from the loop.
struct WaitingRequest {
    std::unique_ptr<ClientConnection> connection;
    HttpRequest req;
    std::shared_ptr<const GatewayPolicy> policy;
    std::optional<ProxyCall> call; // made already (the model named); else the request is handled whole
    std::string model;
    std::chrono::steady_clock::time_point began;
};

// What a connection on a loop asks of its gateway. Called on the loop's thread.
class ConnectionHost {
public:
    virtual ~ConnectionHost() = default;
    virtual std::shared_ptr<const GatewayPolicy> policy() const = 0;
    // The gateway stops: an idle connection closes, and none takes another request.
    virtual bool stopping() const = 0;
    virtual const std::string& state_dir() const = 0;
    // Answers what the gateway answers itself; a request for a model comes back as its call.
    virtual std::optional<ProxyCall> front(HttpRequest& req, ClientConnection& c, const GatewayPolicy& p, ProxyOutcome& out,
                                           std::string& model) = 0;
    // Answers, with no state read, what needs no route (a refused Host, Origin or key, a
    // preflight, /health, the dashboard's page): true when it did. A request that would wait on
    // a thread of its own is asked here first, so that a refused one never gets a thread.
    virtual bool answer_at_door(HttpRequest& req, ClientConnection& c, const GatewayPolicy& p, ProxyOutcome& out) = 0;
    // The answer to a request that could not be read (413, 431, 400; none to a close or a timeout).
    virtual void refuse_unreadable(ReadResult r, ClientConnection& c, const ReadLimits& limits) = 0;
    virtual ProxyLimits limits_for(const GatewayPolicy& p) = 0;
    // A model call in flight: begun, then ended (`served`: it counts as a request served).
    virtual void call_began() = 0;
    virtual void call_ended(bool served) = 0;
    virtual void access_log(const HttpRequest& req, const ClientConnection& c, const std::string& model, const ProxyOutcome& out,
                            std::chrono::steady_clock::time_point began) = 0;
    virtual void to_thread(WaitingRequest w) = 0;
    virtual void connection_closed() = 0;
    // A line for the log (a connection that failed).
    virtual void log(std::string_view line) = 0;
};

// Puts `c` on `loop` until it closes or a request of it waits. `first`: no request has come on it
// yet (the first waits the header timeout, later ones the keep-alive wait).
void serve_on_loop(PumpLoop& loop, ConnectionHost& host, std::unique_ptr<ClientConnection> c, bool first);

} // namespace llmctl
