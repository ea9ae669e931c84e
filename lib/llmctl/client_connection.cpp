#include "llmctl/client_connection.hpp"

#include "llmctl/address.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>
#include <poll.h>

namespace llmctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

ClientConnection::ClientConnection(asio::ip::tcp::socket socket, const std::atomic<bool>& stopping) : stream_(ioc_), stopping_(stopping) {
    beast::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    if (!ec) peer_ = fmt::format("{}:{}", url_host(ep.address().to_string()), ep.port());
    auto fd = socket.release(ec);
    stream_.socket().assign(ep.protocol(), fd, ec);
    stream_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
}

// Runs one operation to its end, waking every 100 ms: a stop closes the socket when
// `stop_ends_it` (a wait for the next request), so the operation ends at once.
template <class Start>
std::pair<beast::error_code, std::size_t> ClientConnection::run(Start start, bool stop_ends_it) {
    beast::error_code ec;
    std::size_t bytes = 0;
    bool done = false;
    start([&](beast::error_code e, std::size_t n) {
        ec = e;
        bytes = n;
        done = true;
    });
    ioc_.restart();
    while (!done) {
        ioc_.run_one_for(std::chrono::milliseconds(100));
        if (!done && stop_ends_it && stopping_.load()) {
            beast::error_code ignored;
            stream_.socket().close(ignored);
        }
    }
    return {ec, bytes};
}

ReadResult ClientConnection::read(HttpRequest& req, const ReadLimits& limits, Millis idle_wait) {
    // The first byte may take idle_wait (a kept-alive connection between requests); a stop ends
    // that wait. Then the header has header_timeout, the body body_timeout.
    if (buf_.size() == 0) {
        stream_.expires_after(idle_wait);
        auto [ec, n] = run([&](auto done) { stream_.async_read_some(buf_.prepare(16 * 1024), done); }, true);
        if (ec) return ec == beast::error::timeout ? ReadResult::timed_out : ReadResult::closed;
        buf_.commit(n);
    }
    http::request_parser<http::string_body> parser;
    parser.header_limit(limits.max_header);
    parser.body_limit(limits.max_body);
    stream_.expires_after(limits.header_timeout);
    auto [hec, hn] = run([&](auto done) { http::async_read_header(stream_, buf_, parser, done); }, false);
    (void)hn;
    if (hec) return read_failure(hec);
    stream_.expires_after(limits.body_timeout);
    auto [bec, bn] = run([&](auto done) { http::async_read(stream_, buf_, parser, done); }, false);
    (void)bn;
    if (bec) return read_failure(bec);
    req = parser.release();
    keep_alive_ = req.keep_alive();
    return ReadResult::request;
}

ReadResult ClientConnection::read_failure(const beast::error_code& ec) {
    keep_alive_ = false;
    if (ec == beast::error::timeout) return ReadResult::timed_out;
    if (ec == http::error::body_limit) return ReadResult::too_large;
    if (ec == http::error::header_limit) return ReadResult::header_too_large;
    if (ec.category() == http::make_error_code(http::error::bad_version).category()) return ReadResult::bad_request;
    return ReadResult::closed;
}

void ClientConnection::write_all(std::string_view data) {
    stream_.expires_after(write_timeout_);
    auto [ec, n] = run([&](auto done) { asio::async_write(stream_, asio::buffer(data.data(), data.size()), done); }, false);
    (void)n;
    if (ec) {
        keep_alive_ = false;
        throw ClientGone();
    }
}

std::string ClientConnection::head(int status, const std::vector<Header>& headers, const char* framing) const {
    std::string out = fmt::format("HTTP/1.1 {} {}\r\n", status, std::string(http::obsolete_reason(http::int_to_status(status))));
    for (const auto& h : headers) out += fmt::format("{}: {}\r\n", h.name, h.value);
    out += framing;
    if (!keep_alive_) out += "Connection: close\r\n";
    out += "\r\n";
    return out;
}

void ClientConnection::respond(int status, const std::vector<Header>& headers, const std::string& body) {
    std::string out = head(status, headers, fmt::format("Content-Length: {}\r\n", body.size()).c_str());
    out += body;
    write_all(out);
}

void ClientConnection::begin_stream(int status, const std::vector<Header>& headers) {
    write_all(head(status, headers, "Transfer-Encoding: chunked\r\n"));
    streaming_ = true;
}

void ClientConnection::stream_piece(std::string_view data) {
    if (data.empty()) return;
    std::string out = fmt::format("{:x}\r\n", data.size());
    out += data;
    out += "\r\n";
    write_all(out);
}

void ClientConnection::end_stream() {
    if (!streaming_) return;
    streaming_ = false;
    write_all("0\r\n\r\n");
}

bool ClientConnection::peer_gone() {
    pollfd p{};
    p.fd = stream_.socket().native_handle();
    p.events = POLLIN | POLLRDHUP;
    if (::poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void ClientConnection::close() {
    beast::error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
}

} // namespace llmctl
