#pragma once
// One client's connection to `llmctl serve`: requests read under a deadline and size limits,
// answers written whole or streamed in chunks, each write under a deadline. Every operation runs
// on the connection's own io_context on the calling thread (a connection is one thread's).

#include "llmctl/units.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <atomic>
#include <stdexcept>
#include <string_view>
#include <optional>
#include <string>
#include <vector>

namespace llmctl {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

struct ReadLimits {
    Millis header_timeout{10'000}; // the whole header, from when the wait begins
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
    ClientConnection(boost::asio::ip::tcp::socket socket, const std::atomic<bool>& stopping);

    // The next request into `req`. While waiting for its first byte, a stop ends the wait.
    ReadResult read(HttpRequest& req, const ReadLimits& limits, Millis idle_wait);

    struct Header {
        std::string name, value;
    };
    // A whole answer (Content-Length). Throws ClientGone when it cannot be written.
    void respond(int status, const std::vector<Header>& headers, const std::string& body);
    // A streamed answer: the head (chunked), then pieces, then the end. Each throws ClientGone
    // when the client is gone or has not read for the write timeout.
    void begin_stream(int status, const std::vector<Header>& headers);
    void stream_piece(std::string_view data);
    void end_stream();
    bool streaming() const { return streaming_; }

    // True when the client hung up (checked without reading what it may have sent).
    bool peer_gone();
    // False once the request or a failure says the connection ends after this answer.
    bool keep_alive() const { return keep_alive_; }
    void end_after_this() { keep_alive_ = false; }
    void close();
    const std::string& peer() const { return peer_; }

private:
    template <class Start>
    std::pair<boost::beast::error_code, std::size_t> run(Start start, bool stop_ends_it);
    ReadResult read_failure(const boost::beast::error_code& ec);
    void write_all(std::string_view data);
    std::string head(int status, const std::vector<Header>& headers, const char* framing) const;

    boost::asio::io_context ioc_;
    boost::beast::tcp_stream stream_;
    boost::beast::flat_buffer buf_;
    const std::atomic<bool>& stopping_;
    std::string peer_;
    bool keep_alive_ = true;
    bool streaming_ = false;
    Millis write_timeout_{60'000};
};

// The client went away (or stopped reading) while an answer was being written.
struct ClientGone : std::runtime_error {
    ClientGone() : std::runtime_error("the client closed the connection") {}
};

} // namespace llmctl
