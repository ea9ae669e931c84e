#include "llmctl/http_client.hpp"

#include "llmctl/address.hpp"
#include "llmctl/errors.hpp"

#include "llmctl/deadline_socket.hpp"
#include "llmctl/tls_tunnel.hpp"
#include "llmctl/upstream_pool.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <charconv>
#include <optional>
#include <poll.h>
#include <sys/socket.h>

namespace llmctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// A Retry-After of delay-seconds (0 to a day); nullopt for none, or an HTTP date.
std::optional<int> seconds_in(std::string_view v) {
    int n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc{} || end != v.data() + v.size() || n < 0 || n > 86'400) return std::nullopt;
    return n;
}

} // namespace

// One request and its streamed answer over a blocking socket (deadline_socket.hpp): each phase
// (connect, send, first byte, every next piece) under its own deadline, capped by the total one,
// with Ctrl-C polled every 100 ms. The connection is one kept from an earlier answer to the same
// server when there is one (upstream_pool.hpp), and is kept in turn when the answer ends whole.
class Exchange {
public:
    Exchange(const Url& url, const std::string& path, const HttpTimeouts& t, const std::function<bool()>& cancelled)
        : url_(url), path_(path), t_(t), cancelled_(cancelled), began_(std::chrono::steady_clock::now()) {}

    // A kept connection when there is one, else a new one.
    void connect() {
        Fd kept = take_kept_connection(connection_key(url_), url_.port);
        reused_ = kept.valid();
        sock_.emplace(reused_ ? std::move(kept) : dial());
        if (cancelled_) sock_->cancel_when(&cancelled_);
    }

    // Sends the request and reads the answer's status line and headers; false when a kept
    // connection turned out closed by the server before answering (send it again on a new one).
    bool exchange(const http::request<http::string_body>& req, HttpHead& head) {
        sock_->expires_after(deadline(t_.first_byte));
        beast::error_code ec;
        http::write(*sock_, req, ec);
        if (ec && reused_ && closed_by_peer(ec)) return false;
        if (ec) throw fail(ec, "sending the request", t_.first_byte);
        parser_.body_limit(boost::none);
        // Room for a first read of the head and what follows it (Beast reads into the buffer's
        // free capacity, at least 512 bytes: three tokens or so).
        buf_.reserve(k_read_room);
        sock_->expires_after(deadline(t_.first_byte));
        http::read_header(*sock_, buf_, parser_, ec);
        if (ec && reused_ && closed_by_peer(ec) && buf_.size() == 0 && !parser_.got_some()) return false;
        if (ec) throw fail(ec, "waiting for the first token", t_.first_byte);
        const auto& res = parser_.get();
        read_head(res, head);
        return true;
    }

    // The loop's way: the request written whole at once, on a kept connection or a new one
    // (connecting: send_connected once the socket is writable). not_sent when the socket did not
    // take it all (the exchange is then dropped: go the waiting way).
    SendStep send_now(std::string_view wire, Fd kept) {
        if (!kept.valid()) kept = take_kept_connection(connection_key(url_), url_.port);
        reused_ = kept.valid();
        if (reused_) return write_whole(Fd(std::move(kept)), wire);
        if (url_.https) return write_whole(open_tls_tunnel(url_, t_.connect), wire); // connected at once: the helper connects
        auto ep = endpoint();
        Fd fd = new_socket(ep);
        if (::connect(fd.get(), ep.data(), static_cast<socklen_t>(ep.size())) == 0) return write_whole(std::move(fd), wire);
        if (errno != EINPROGRESS) throw fail(beast::error_code(errno, beast::system_category()), "connect", t_.connect);
        sock_.emplace(std::move(fd));
        connecting_ = true;
        piece_deadline_ = std::chrono::steady_clock::now() + deadline(t_.connect);
        return SendStep::connecting;
    }

    SendStep send_connected(std::string_view wire) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(sock_->fd(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) throw fail(beast::error_code(err, beast::system_category()), "connect", t_.connect);
        connecting_ = false;
        return write_whole(sock_->release_fd(), wire);
    }

    // What has come of the answer's head, without waiting (after send_now).
    HeadStep head_at_hand(HttpHead& head) {
        for (;;) {
            if (buf_.size() > 0) {
                beast::error_code ec;
                buf_.consume(parser_.put(buf_.data(), ec));
                if (ec && ec != http::error::need_more) throw fail(ec, "waiting for the first token", t_.first_byte);
                if (parser_.is_header_done()) {
                    read_head(parser_.get(), head);
                    return HeadStep::head;
                }
            }
            auto room = buf_.prepare(k_read_room);
            ssize_t n = ::recv(sock_->fd(), room.data(), room.size(), MSG_DONTWAIT);
            if (n > 0) {
                buf_.commit(static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return HeadStep::wait;
            beast::error_code ec = n == 0 ? beast::error_code(asio::error::eof) : beast::error_code(errno, beast::system_category());
            if (closed_by_peer(ec) && buf_.size() == 0 && !parser_.got_some()) // a kept connection the server had closed
                return HeadStep::closed_unanswered;
            throw fail(ec, "waiting for the first token", t_.first_byte);
        }
    }

    // Every piece of the body, as it arrives, to `on_piece`: what is at hand, then a wait for
    // the socket to be readable, under the piece's deadline.
    void read_body(const PieceFn& on_piece) {
        for (;;) {
            ReadStep step = read_at_hand(on_piece);
            if (step == ReadStep::done) return;
            if (step == ReadStep::more) continue;
            sock_->expires_after(std::chrono::ceil<Millis>(piece_deadline_ - std::chrono::steady_clock::now()));
            beast::error_code ec;
            if (sock_->ready(POLLIN, ec)) continue;
            if (ec == beast::error::timeout) throw piece_timed_out();
            throw fail(ec, piece_phase(), piece_limit());
        }
    }

    // What has arrived of the body, without waiting: one read at most (of all a fast server sent
    // since the last one), parsed and handed on as one piece, so that it goes on with one write.
    ReadStep read_at_hand(const PieceFn& on_piece) {
        if (deliver_buffered(on_piece)) return ReadStep::done;
        auto room = buf_.prepare(k_read_room);
        for (;;) {
            ssize_t n = ::recv(sock_->fd(), room.data(), room.size(), MSG_DONTWAIT);
            if (n > 0) {
                buf_.commit(static_cast<std::size_t>(n));
                return deliver_buffered(on_piece) ? ReadStep::done : ReadStep::more;
            }
            if (n == 0) return end_of_stream();
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return ReadStep::would_block;
            throw fail(beast::error_code(errno, beast::system_category()), piece_phase(), piece_limit());
        }
    }

    // The end of the wait for the next piece (the first token's timeout before the first piece,
    // the stall timeout after), counted from the last piece or from `restart_piece_clock`.
    std::chrono::steady_clock::time_point piece_deadline() const { return piece_deadline_; }
    void restart_piece_clock() { piece_deadline_ = std::chrono::steady_clock::now() + deadline(piece_limit()); }
    Error piece_timed_out() const {
        if (connecting_) return fail(beast::error::timeout, "connect", t_.connect);
        return fail(beast::error::timeout, piece_phase(), piece_limit());
    }
    int fd() const { return sock_->fd(); }

    // The answer ended whole: its connection is kept for the next request to the server when
    // both sides allow (HTTP/1.1 keep-alive, nothing read beyond the answer), else closed.
    void finish() { keep_connection(connection_key(url_), url_.port, finish_kept()); }
    Fd finish_kept() {
        if (parser_.is_done() && parser_.get().keep_alive() && buf_.size() == 0) return sock_->release_fd();
        sock_->close();
        return Fd();
    }

private:
    template <class Response>
    void read_head(const Response& res, HttpHead& head) {
        head.status = static_cast<int>(res.result_int());
        head.content_type = std::string(res[http::field::content_type]);
        if (url_.https && (head.status == 502 || head.status == 504)) // (the helper's own answers; a server's header is its own)
            head.tunnel_failure = std::string(res[k_tunnel_header]);
        if (head.status == 429 || head.status == 503) head.retry_after = seconds_in(res[http::field::retry_after]);
        head.body_at_hand = buf_.size() > 0 || parser_.is_done();
        restart_piece_clock();
    }

    // Parses what is buffered and hands it on as one piece (more when over the piece buffer);
    // true once the body has ended.
    bool deliver_buffered(const PieceFn& on_piece) {
        // The pieces are parsed into the thread's buffer (they are handed on at once): an exchange
        // held open (a thousand idle streams) does not keep one of its own.
        // (On the heap, made at the thread's first use: static TLS would cost every thread.)
        static thread_local std::unique_ptr<char[]> buffer;
        if (!buffer) buffer = std::make_unique<char[]>(k_piece);
        char* const piece = buffer.get();
        for (;;) {
            parser_.get().body().data = piece;
            parser_.get().body().size = k_piece;
            while (!parser_.is_done() && buf_.size() > 0 && parser_.get().body().size > 0) {
                beast::error_code ec;
                std::size_t used = parser_.put(buf_.data(), ec);
                buf_.consume(used);
                if (ec == http::error::need_buffer || ec == http::error::need_more) break;
                if (ec) throw fail(ec, piece_phase(), piece_limit());
                if (used == 0) break;
            }
            std::size_t n = k_piece - parser_.get().body().size;
            if (n > 0) {
                got_piece_ = true;
                restart_piece_clock();
                on_piece(std::string_view(piece, n), parser_.is_done());
            }
            if (parser_.is_done()) return true;
            if (n < k_piece) return false; // all that is buffered is parsed
        }
    }

    // The server closed: the end of a body that runs to the close, else an answer cut short.
    ReadStep end_of_stream() {
        beast::error_code ec;
        parser_.put_eof(ec);
        if (!ec && parser_.is_done()) return ReadStep::done;
        throw Error(Exit::server, fmt::format("{}: the server closed the connection mid-answer", where()));
    }

    const char* piece_phase() const { return got_piece_ ? "waiting for the next token (stalled)" : "waiting for the first token"; }
    Millis piece_limit() const { return got_piece_ ? t_.stall : t_.first_byte; }

    static bool closed_by_peer(const beast::error_code& ec) {
        return ec == asio::error::eof || ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
               ec == asio::error::broken_pipe || ec == http::error::partial_message;
    }

    asio::ip::tcp::endpoint endpoint() {
        beast::error_code ec;
        auto addr = asio::ip::make_address(url_.host == "localhost" ? "127.0.0.1" : url_.host, ec);
        if (!ec) return asio::ip::tcp::endpoint(addr, static_cast<unsigned short>(url_.port));
        asio::io_context ioc; // a name to resolve (rare: a model's url)
        asio::ip::tcp::resolver res(ioc);
        auto r = res.resolve(url_.host, std::to_string(url_.port), ec);
        if (ec || r.empty()) throw Error(Exit::server, fmt::format("{}: cannot resolve {}: {}", where(), url_.host, ec.message()));
        return *r.begin();
    }

    // The request in one write; the socket is kept (closed with the exchange: a caller's loop may
    // watch it) when it did not take it all.
    SendStep write_whole(Fd fd, std::string_view wire) {
        sock_.emplace(std::move(fd));
        ssize_t n = ::send(sock_->fd(), wire.data(), wire.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n != static_cast<ssize_t>(wire.size())) return SendStep::not_sent;
        parser_.body_limit(boost::none);
        buf_.reserve(k_read_room);
        restart_piece_clock();
        return SendStep::sent;
    }

    Fd new_socket(const asio::ip::tcp::endpoint& ep) const {
        Fd fd(::socket(ep.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!fd.valid()) throw fail(beast::error_code(errno, beast::system_category()), "connect", t_.connect);
        int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return fd;
    }

    // A new connection, made under the connect deadline.
    Fd dial() {
        if (url_.https) return open_tls_tunnel(url_, t_.connect);
        auto ep = endpoint();
        Fd fd = new_socket(ep);
        if (::connect(fd.get(), ep.data(), static_cast<socklen_t>(ep.size())) == 0) return fd;
        if (errno != EINPROGRESS) throw fail(beast::error_code(errno, beast::system_category()), "connect", t_.connect);
        DeadlineSocket s(std::move(fd));
        if (cancelled_) s.cancel_when(&cancelled_);
        s.expires_after(deadline(t_.connect));
        beast::error_code ec;
        if (!s.ready(POLLOUT, ec)) throw fail(ec, "connect", t_.connect);
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) throw fail(beast::error_code(err, beast::system_category()), "connect", t_.connect);
        return s.release_fd();
    }

    // The phase's deadline, or what is left of the total one when that comes first.
    Millis deadline(Millis phase) const {
        total_binds_ = false;
        if (phase.count() <= 0) phase = Millis(std::int64_t{1} << 40); // 0: no limit (about 35 years)
        if (!t_.total) return phase;
        auto left = std::chrono::duration_cast<Millis>(*t_.total - (std::chrono::steady_clock::now() - began_));
        total_binds_ = left < phase;
        return std::max(Millis(1), std::min(phase, left));
    }

    Error fail(const beast::error_code& ec, const char* phase, Millis limit) const {
        if (ec == asio::error::operation_aborted && cancelled_ && cancelled_()) return Error(Exit::interrupted, "interrupted");
        if (ec == beast::error::timeout) {
            if (total_binds_)
                return Error(Exit::timeout,
                             fmt::format("{}: no complete answer within the total timeout {}", where(), format_duration(*t_.total)));
            return Error(Exit::timeout, fmt::format("{}: {} timed out after {}", where(), phase, format_duration(limit)));
        }
        return Error(Exit::server, fmt::format("{}: {}: {}", where(), phase, ec.message()));
    }

    static constexpr std::size_t k_read_room = 16 * 1024;
    static constexpr std::size_t k_piece = 16 * 1024;
    // The URL the errors name (made only for an error).
    std::string where() const { return fmt::format("{}://{}:{}{}{}", url_.scheme(), url_host(url_.host), url_.port, url_.base, path_); }

    const Url& url_;
    const std::string& path_; // (the caller's: it outlives the exchange)
    const HttpTimeouts& t_;
    const std::function<bool()>& cancelled_;
    std::optional<DeadlineSocket> sock_;
    bool reused_ = false;     // sock_ is a kept connection
    bool connecting_ = false; // send_now's connect has not completed yet
    std::chrono::steady_clock::time_point began_;
    mutable bool total_binds_ = false; // the running phase ends at the total deadline, not its own
    bool got_piece_ = false;           // the body's first piece has come (the stall timeout applies)
    std::chrono::steady_clock::time_point piece_deadline_{};
    beast::flat_buffer buf_;
    http::response_parser<http::buffer_body> parser_;
};

namespace {

// RFC 7230: [::1]:PORT; the scheme's own port left out (a provider's front may want the bare name).
std::string host_header(const Url& url) {
    if (url.port == (url.https ? 443 : 80)) return url_host(url.host);
    return url_host(url.host) + ":" + std::to_string(url.port);
}

http::request<http::string_body> make_request(const Url& url, const UpstreamRequest& r) {
    http::request<http::string_body> req{r.method == "GET" ? http::verb::get : http::verb::post, url.base + r.path, 11};
    req.set(http::field::host, host_header(url));
    req.set(http::field::user_agent, "llmctl");
    if (r.method != "GET") req.set(http::field::content_type, r.content_type);
    req.set(http::field::accept, r.accept);
    if (!r.bearer.empty()) req.set(http::field::authorization, "Bearer " + r.bearer);
    for (const auto& [name, value] : url.headers) req.set(name, value);
    req.body() = r.body;
    if (r.method != "GET") req.prepare_payload();
    return req;
}

// The request as it goes on the wire (what make_request makes, written by hand: the loop's way
// sends it in one write).
std::string wire_request(const Url& url, const UpstreamRequest& r) {
    const bool get = r.method == "GET";
    // (Appended piece by piece into one allocation: this is every relayed request's.)
    std::string out;
    out.reserve(160 + url.base.size() + r.path.size() + url.host.size() + r.content_type.size() + r.accept.size() + r.bearer.size() +
                (get ? 0 : r.body.size()));
    out.append(get ? "GET " : "POST ").append(url.base).append(r.path).append(" HTTP/1.1\r\nHost: ");
    out.append(host_header(url));
    out.append("\r\nUser-Agent: llmctl\r\n");
    if (!get) out.append("Content-Type: ").append(r.content_type).append("\r\n");
    out.append("Accept: ").append(r.accept).append("\r\n");
    if (!r.bearer.empty()) out.append("Authorization: Bearer ").append(r.bearer).append("\r\n");
    for (const auto& [name, value] : url.headers) out.append(name).append(": ").append(value).append("\r\n");
    if (!get) out.append("Content-Length: ").append(std::to_string(r.body.size())).append("\r\n");
    out.append("\r\n");
    if (!get) out.append(r.body);
    return out;
}

} // namespace

SendStep UpstreamCall::send_now(Fd kept) {
    x_ = std::make_unique<Exchange>(url_, r_.path, t_, cancelled_);
    wire_ = wire_request(url_, r_);
    return x_->send_now(wire_, std::move(kept));
}

SendStep UpstreamCall::send_connected() { return x_->send_connected(wire_); }

HeadStep UpstreamCall::head_at_hand(HttpHead& head) { return x_->head_at_hand(head); }

UpstreamCall::UpstreamCall(const Url& url, const UpstreamRequest& r, const HttpTimeouts& t, const std::function<bool()>& cancelled)
    : url_(url), r_(r), t_(t), cancelled_(cancelled) {}

UpstreamCall::~UpstreamCall() = default;

HttpHead UpstreamCall::send() {
    const auto req = make_request(url_, r_);
    for (;;) {
        x_ = std::make_unique<Exchange>(url_, r_.path, t_, cancelled_);
        x_->connect();
        HttpHead head;
        if (x_->exchange(req, head)) return head; // (false: a kept connection the server had closed: a new one)
    }
}

void UpstreamCall::read_all(const PieceFn& on_piece) { x_->read_body(on_piece); }
ReadStep UpstreamCall::read_at_hand(const PieceFn& on_piece) { return x_->read_at_hand(on_piece); }
int UpstreamCall::fd() const { return x_->fd(); }
std::chrono::steady_clock::time_point UpstreamCall::piece_deadline() const { return x_->piece_deadline(); }
void UpstreamCall::restart_piece_clock() { x_->restart_piece_clock(); }
void UpstreamCall::piece_timed_out() const { throw x_->piece_timed_out(); }
void UpstreamCall::finish() { x_->finish(); }
Fd UpstreamCall::finish_kept() { return x_->finish_kept(); }

void http_forward(const Url& url, const UpstreamRequest& r, const HttpTimeouts& t, const std::function<void(const HttpHead&)>& on_head,
                  const PieceFn& on_body, const std::function<bool()>& cancelled) {
    UpstreamCall call(url, r, t, cancelled);
    on_head(call.send());
    call.read_all(on_body);
    call.finish();
}

std::string connection_key(const Url& url) {
    if (!url.https) return url.host;
    const TlsSettings& t = url.tls;
    return fmt::format("https\n{}\n{}\n{}\n{}\n{}", url.host, t.ca_file, t.client_cert, t.client_key, t.verify);
}

void open_ahead(const Url& url, Millis connect_timeout) {
    if (!url.https) return;
    try {
        keep_connection(connection_key(url), url.port, open_tls_tunnel(url, connect_timeout));
    } catch (const Error&) {}
}

HttpResult http_post_stream(const Url& url, const std::string& path, const std::string& body, const std::string& bearer,
                            const HttpTimeouts& t, const std::function<void(std::string_view)>& on_body,
                            const std::function<bool()>& cancelled) {
    UpstreamRequest r;
    r.path = path;
    r.body = body;
    r.bearer = bearer;
    HttpResult result;
    bool ok = false;
    http_forward(
        url, r, t,
        [&](const HttpHead& head) {
            result.status = head.status;
            result.tunnel_failure = head.tunnel_failure;
            ok = head.status / 100 == 2;
        },
        [&](std::string_view piece, bool) {
            if (ok)
                on_body(piece);
            else if (result.error_body.size() < 64 * 1024)
                result.error_body.append(piece);
        },
        cancelled);
    if (!result.tunnel_failure.empty()) throw tunnel_error(result.tunnel_failure, result.error_body);
    return result;
}

} // namespace llmctl
