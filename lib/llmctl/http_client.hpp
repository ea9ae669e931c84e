#pragma once
// A small HTTP/1.1 client for the OpenAI API (Boost.Beast, no libcurl): one POST whose response
// body is handed over piece by piece as it arrives, with a deadline per phase.

#include "llmctl/address.hpp"
#include "llmctl/fd.hpp"
#include "llmctl/units.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace llmctl {

// Each phase's limit; 0 means no limit (the rule for every llmctl timeout).
struct HttpTimeouts {
    Millis connect{5'000};
    Millis first_byte{300'000};  // from the request sent to the first body byte (first token)
    Millis stall{60'000};        // between two pieces of the body
    std::optional<Millis> total; // the whole exchange
};

struct HttpResult {
    int status = 0;
    std::string error_body;     // the body, when status is not 2xx
    std::string tunnel_failure; // an https url's helper answered: connect | timeout | tls (tls_tunnel.hpp)
};

// One request as a relay sends it on (`llmctl serve`): the body as the client sent it.
struct UpstreamRequest {
    std::string method = "POST"; // POST or GET
    std::string path;            // after the URL's base, with any query
    std::string body;
    std::string content_type = "application/json";
    std::string accept = "text/event-stream, application/json";
    std::string bearer;
};

struct HttpHead {
    int status = 0;
    std::string content_type;
    std::string tunnel_failure;     // as HttpResult's
    std::optional<int> retry_after; // seconds, from a Retry-After that is a number (not a date)
    bool body_at_hand = false;      // body bytes came with the head: the first piece follows at once
};

using PieceFn = std::function<void(std::string_view, bool last)>;

// What a read without waiting gave (UpstreamCall::read_at_hand).
enum class ReadStep {
    done,       // the body has ended
    more,       // a piece went on; more may follow at once
    would_block // nothing at hand: wait for the socket to be readable
};

// What sending without waiting did (UpstreamCall::send_now).
enum class SendStep {
    sent,       // the request went whole
    connecting, // a new connection: wait for its socket to be writable, then send_connected
    not_sent,   // the socket did not take it all at once: drop the call, send() it
};

// What a look at an answer's head without waiting gave (UpstreamCall::head_at_hand).
enum class HeadStep {
    head,              // the head is whole
    wait,              // not yet: wait for the socket to be readable
    closed_unanswered, // the kept connection had been closed by the server: nothing was answered
};

// A connection to a model server that a caller keeps for its next request there, rather than
// in the process's pool (serve's loop connections: watched from one request to the next, it costs
// no epoll_ctl and no look at whether it is open).
struct KeptConnection {
    std::string host; // connection_key of its url
    int port = 0;
    Fd fd;
};

class Exchange;

// One request and its answer, step by step, for a relay that waits for the body's pieces itself
// (serve's relay pump): send() connects (taking a kept connection when there is one) and reads
// the head; read_at_hand() hands on what has arrived of the body; finish() keeps the connection
// for the next request when the answer ended whole. Errors as for http_forward. The url, the
// request and the timeouts are kept by reference: they must outlive the call.
class UpstreamCall {
public:
    UpstreamCall(const Url& url, const UpstreamRequest& r, const HttpTimeouts& t, const std::function<bool()>& cancelled);
    ~UpstreamCall();
    UpstreamCall(const UpstreamCall&) = delete;
    UpstreamCall& operator=(const UpstreamCall&) = delete;

    HttpHead send();
    // The event loop's way, instead of send(): the request written at once, whole, on a kept
    // connection or a new one (once connected), then the head read as it comes. Until the head,
    // piece_deadline is the connect's, then the first token's. Errors as for send().
    // `kept`: a connection to the same server the caller kept (else one from the pool, or new).
    SendStep send_now(Fd kept = Fd());
    SendStep send_connected();
    HeadStep head_at_hand(HttpHead& head);
    // Every piece of the body, waiting for each on this thread.
    void read_all(const PieceFn& on_piece);
    ReadStep read_at_hand(const PieceFn& on_piece);
    // The socket to wait on, and until when (the first token's or the stall timeout, counted from
    // the last piece or from restart_piece_clock; capped by the total timeout).
    int fd() const;
    std::chrono::steady_clock::time_point piece_deadline() const;
    void restart_piece_clock();
    [[noreturn]] void piece_timed_out() const;
    void finish();
    // As finish, for a caller that keeps the connection itself: invalid when it cannot be kept
    // (it is closed then).
    Fd finish_kept();

private:
    const Url& url_;
    const UpstreamRequest& r_;
    const HttpTimeouts& t_;
    const std::function<bool()>& cancelled_;
    std::unique_ptr<Exchange> x_;
    std::string wire_; // send_now's request, kept while connecting
};

// Sends `r` to `url`; `on_head` gets the status line and headers, then `on_body` every piece of
// the body (whatever the status) as it arrives, `last` with the piece that ends it. Timeouts,
// `cancelled` and errors as for http_post_stream; an exception thrown by a callback cuts the
// exchange (the connection closes).
void http_forward(const Url& url, const UpstreamRequest& r, const HttpTimeouts& t, const std::function<void(const HttpHead&)>& on_head,
                  const std::function<void(std::string_view, bool last)>& on_body, const std::function<bool()>& cancelled);

// Opens a connection to an https url now and keeps it in the pool for the next request there (a
// TLS connection costs a process and a handshake: a caller starts it before other work). Does
// nothing for http, and nothing when it cannot (the request then dials and reports why).
void open_ahead(const Url& url, Millis connect_timeout);

// The key of a url's connections in the pool (upstream_pool.hpp) and in a KeptConnection: the
// host, or for https the host and its TLS settings (a connection made with one client
// certificate is not another model's).
std::string connection_key(const Url& url);

// POSTs `body` (JSON) to `url.base + path`. For a 2xx answer, every piece of the body goes to
// `on_body` as it arrives. `cancelled` is polled every 100 ms (Ctrl-C): the exchange is cut
// and Error(interrupted) thrown. Other errors: Error(server) for a refused connection or a cut
// stream, Error(timeout) naming the phase.
HttpResult http_post_stream(const Url& url, const std::string& path, const std::string& body, const std::string& bearer,
                            const HttpTimeouts& t, const std::function<void(std::string_view)>& on_body,
                            const std::function<bool()>& cancelled);

} // namespace llmctl
