#include "llmctl/client_connection.hpp"

#include "llmctl/address.hpp"

#include <array>
#include <boost/asio/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>
#include <iterator>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

namespace llmctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

ClientConnection::ClientConnection(Fd socket, std::string peer) : socket_(std::move(socket)), peer_(std::move(peer)) {
    int one = 1;
    ::setsockopt(socket_.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

std::optional<ReadResult> ClientConnection::read_at_hand(HttpRequest& req, const ReadLimits& limits) {
    if (!parser_) {
        parser_.emplace();
        parser_->header_limit(limits.max_header);
        parser_->body_limit(limits.max_body);
        parser_->eager(true);
    }
    for (;;) {
        while (buf_.size() > 0 && !parser_->is_done()) {
            beast::error_code ec;
            std::size_t used = parser_->put(buf_.data(), ec);
            buf_.consume(used);
            if (ec == http::error::need_more) break;
            if (ec) {
                parser_.reset();
                return read_failure(ec);
            }
            if (used == 0) break;
        }
        if (parser_->is_done()) {
            req = parser_->release();
            parser_.reset();
            if (buf_.size() == 0) buf_.shrink_to_fit(); // (an idle connection, or a long answer's, keeps no read buffer)
            keep_alive_ = req.keep_alive();
            http10_ = req.version() < 11;
            return ReadResult::request;
        }
        auto room = buf_.prepare(16 * 1024);
        ssize_t n = ::recv(socket_.fd(), room.data(), room.size(), MSG_DONTWAIT);
        if (n > 0) {
            buf_.commit(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return std::nullopt;
        keep_alive_ = false; // closed, or reset
        return ReadResult::closed;
    }
}

ClientConnection::ReadPhase ClientConnection::read_phase() const {
    if (parser_ && parser_->is_header_done()) return ReadPhase::body;
    if (buf_.size() > 0 || (parser_ && parser_->got_some())) return ReadPhase::header;
    return ReadPhase::idle;
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
    if (defer_) {
        defer(data);
        return;
    }
    socket_.expires_after(write_timeout_);
    beast::error_code ec;
    if (!deferred_.empty()) {
        asio::write(socket_, std::array<asio::const_buffer, 2>{asio::buffer(deferred_), asio::buffer(data.data(), data.size())}, ec);
        deferred_.clear();
    } else {
        asio::write(socket_, asio::buffer(data.data(), data.size()), ec);
    }
    if (ec) gone();
}

void ClientConnection::defer(std::string_view data) {
    if (deferred_.empty()) {
        beast::error_code ec;
        data.remove_prefix(socket_.write_now(data, ec));
        if (ec) gone();
        if (data.empty()) return;
        deferred_since_ = std::chrono::steady_clock::now();
    }
    deferred_.append(data);
}

void ClientConnection::flush_deferred() {
    if (deferred_.empty()) return;
    beast::error_code ec;
    std::size_t n = socket_.write_now(deferred_, ec);
    if (ec) gone();
    if (n == 0) return;
    deferred_.erase(0, n);
    deferred_since_ = std::chrono::steady_clock::now();
}

void ClientConnection::gone() {
    keep_alive_ = false;
    throw ClientGone();
}

std::string ClientConnection::head(int status, const std::vector<Header>& headers, const char* framing) const {
    // (Appended piece by piece: every answer has one.)
    std::string out;
    out.reserve(128);
    auto reason = http::obsolete_reason(http::int_to_status(status));
    out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(reason.data(), reason.size()).append("\r\n");
    for (const auto& h : headers) out.append(h.name).append(": ").append(h.value).append("\r\n");
    out.append(framing);
    if (!keep_alive_) out.append("Connection: close\r\n");
    out.append("\r\n");
    return out;
}

void ClientConnection::respond(int status, const std::vector<Header>& headers, const std::string& body) {
    std::string out = head(status, headers, fmt::format("Content-Length: {}\r\n", body.size()).c_str());
    out += body;
    write_all(out);
}

void ClientConnection::respond_without_body(int status, const std::vector<Header>& headers) { write_all(head(status, headers, "")); }

// An HTTP/1.0 client knows no chunked encoding: its stream is the bytes as they are, ended by
// closing the connection.
void ClientConnection::begin_stream(int status, const std::vector<Header>& headers, bool held) {
    if (http10_) keep_alive_ = false;
    held_head_ = head(status, headers, http10_ ? "" : "Transfer-Encoding: chunked\r\n");
    streaming_ = true;
    if (!held) write_all(std::exchange(held_head_, {}));
}

void ClientConnection::stream_piece(std::string_view data, bool last) {
    // (The thread's buffer, kept from piece to piece: a stream's tokens cost no allocation.)
    static thread_local std::string out;
    out.assign(held_head_);
    held_head_.clear();
    if (!data.empty()) {
        if (http10_) {
            out += data;
        } else {
            fmt::format_to(std::back_inserter(out), "{:x}\r\n", data.size());
            out += data;
            out += "\r\n";
        }
    }
    if (last && streaming_) {
        streaming_ = false;
        if (!http10_) out += "0\r\n\r\n";
    }
    if (!out.empty()) write_all(out);
}

void ClientConnection::end_stream() {
    if (!streaming_) return;
    stream_piece({}, true);
}

bool ClientConnection::peer_gone() {
    pollfd p{socket_.fd(), POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void ClientConnection::close() { socket_.close(); }

} // namespace llmctl
