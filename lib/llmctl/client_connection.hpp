#pragma once
// One client's connection to `llmctl serve`: requests read as they come under size limits (the
// event loop that holds the connection keeps their deadlines), answers written whole or streamed
// in chunks. On the loop, writes never wait (what the client does not take yet is kept, see
// defer_writes); a thread that has the connection for a request that waits writes under a deadline.

#include "llmctl/deadline_socket.hpp"
#include "llmctl/fd.hpp"
#include "llmctl/units.hpp"

#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace llmctl {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

struct ReadLimits {
    Millis header_timeout{10'000}; // the whole header, from its first byte
    Millis body_timeout{60'000};
    std::uint64_t max_body = 32ull << 20;
    std::uint32_t max_header = 16 * 1024;
};

// What a read gave.
enum class ReadResult {
    request,          // a whole request
    closed,           // the client closed (or reset), or the server is stopping: no answer
    timed_out,        // no whole header (or body) in time: closed without an answer
    too_large,        // the body is over max_body: answer 413, then close
    header_too_large, // headers over max_header: answer 431, then close
    bad_request,      // not HTTP/1.x: answer 400, then close
};

class ClientConnection {
public:
    // Takes the accepted socket's descriptor.
    ClientConnection(Fd socket, std::string peer);

    // What has come of the next request, without waiting: nullopt while it is not whole (wait for
    // the socket to be readable).
    std::optional<ReadResult> read_at_hand(HttpRequest& req, const ReadLimits& limits);
    // How far the next request has come (its deadline: the idle wait, the header's, the body's).
    enum class ReadPhase { idle, header, body };
    ReadPhase read_phase() const;
    // Bytes of a next request came with the last one (read them before waiting for the socket).
    bool has_buffered() const { return buf_.size() > 0; }

    struct Header {
        std::string name, value;
    };
    // A whole answer (Content-Length). Throws ClientGone when it cannot be written.
    void respond(int status, const std::vector<Header>& headers, const std::string& body);
    // An answer that has no body by its status (204, 304): the head alone, with no framing.
    void respond_without_body(int status, const std::vector<Header>& headers);
    // A streamed answer: the head (chunked), then pieces, then the end. Each throws ClientGone
    // when the client is gone or has not read for the write timeout. A head `held` goes out with
    // the first piece (one write, when the piece is at hand); a `last` piece carries the end.
    void begin_stream(int status, const std::vector<Header>& headers, bool held = false);
    void stream_piece(std::string_view data, bool last = false);
    void end_stream();
    bool streaming() const { return streaming_; }

    // While writes are deferred (the connection is on an event loop, or the relay pump moves its
    // stream), a write that would block keeps its rest instead of waiting for the client;
    // flush_deferred writes what it can of that when the socket takes more. Once deferring ends,
    // the next write sends the kept bytes first.
    void defer_writes(bool on) { defer_ = on; }
    bool has_deferred() const { return !deferred_.empty(); }
    void flush_deferred();
    // When the oldest kept byte has waited the write timeout, the client is taken as gone.
    std::chrono::steady_clock::time_point deferred_deadline() const { return deferred_since_ + write_timeout_; }
    int fd() const { return socket_.fd(); }

    // True when the client hung up (checked without reading what it may have sent).
    bool peer_gone();
    // False once the request or a failure says the connection ends after this answer.
    bool keep_alive() const { return keep_alive_; }
    void end_after_this() { keep_alive_ = false; }
    void close();
    const std::string& peer() const { return peer_; }

private:
    ReadResult read_failure(const boost::beast::error_code& ec);
    void write_all(std::string_view data);
    void defer(std::string_view data);
    [[noreturn]] void gone();
    std::string head(int status, const std::vector<Header>& headers, const char* framing) const;

    DeadlineSocket socket_;
    std::string held_head_; // begin_stream's, until the first piece
    bool defer_ = false;
    std::string deferred_; // what a deferred write could not write yet
    std::chrono::steady_clock::time_point deferred_since_{};
    boost::beast::flat_buffer buf_;
    std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_; // read_at_hand's request so far
    std::string peer_;
    bool keep_alive_ = true;
    bool streaming_ = false;
    bool http10_ = false; // the request was HTTP/1.0: no chunked encoding, the close ends a stream
    Millis write_timeout_{60'000};
};

// The client went away (or stopped reading) while an answer was being written.
struct ClientGone : std::runtime_error {
    ClientGone() : std::runtime_error("the client closed the connection") {}
};

} // namespace llmctl
