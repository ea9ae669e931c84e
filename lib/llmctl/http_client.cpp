#include "llmctl/http_client.hpp"

#include "llmctl/address.hpp"
#include "llmctl/errors.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

namespace llmctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// One request and its streamed answer: each phase (connect, send, first byte, every next
// piece) under its own deadline, capped by the total one, with Ctrl-C polled every 100 ms.
class Exchange {
public:
    Exchange(const Url& url, const std::string& path, const HttpTimeouts& t, const std::function<bool()>& cancelled)
        : url_(url), t_(t), cancelled_(cancelled), stream_(ioc_), began_(std::chrono::steady_clock::now()),
          where_(fmt::format("http://{}:{}{}{}", url_host(url.host), url.port, url.base, path)) {}

    void connect() {
        auto ep = endpoint();
        stream_.expires_after(deadline(t_.connect));
        await([&](auto done) { stream_.async_connect(ep, [done](beast::error_code e) { done(e); }); }, "connect", t_.connect);
    }

    void send(const http::request<http::string_body>& req) {
        stream_.expires_after(deadline(t_.first_byte));
        await([&](auto done) { http::async_write(stream_, req, [done](beast::error_code e, std::size_t) { done(e); }); },
              "sending the request", t_.first_byte);
    }

    // The status line and the headers a relay passes on.
    HttpHead read_header() {
        parser_.body_limit(boost::none);
        stream_.expires_after(deadline(t_.first_byte));
        await([&](auto done) { http::async_read_header(stream_, buf_, parser_, [done](beast::error_code e, std::size_t) { done(e); }); },
              "waiting for the first token", t_.first_byte);
        const auto& res = parser_.get();
        HttpHead head;
        head.status = static_cast<int>(res.result_int());
        head.content_type = std::string(res[http::field::content_type]);
        return head;
    }

    // Every piece of the body, as it arrives, to `on_piece`.
    void read_body(const std::function<void(std::string_view)>& on_piece) {
        char chunk[16 * 1024];
        bool first = true;
        while (!parser_.is_done()) {
            parser_.get().body().data = chunk;
            parser_.get().body().size = sizeof chunk;
            Millis limit = first ? t_.first_byte : t_.stall;
            stream_.expires_after(deadline(limit));
            auto ec = run(
                [&](auto done) { http::async_read_some(stream_, buf_, parser_, [done](beast::error_code e, std::size_t) { done(e); }); });
            if (ec == http::error::need_buffer) ec = {};
            if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == http::error::partial_message)
                throw Error(Exit::server, fmt::format("{}: the server closed the connection mid-answer", where_));
            if (ec) throw fail(ec, first ? "waiting for the first token" : "waiting for the next token (stalled)", limit);
            parse_buffered();
            std::size_t n = sizeof chunk - parser_.get().body().size;
            if (n == 0) continue;
            first = false;
            on_piece(std::string_view(chunk, n));
        }
    }

    // What the last read brought beyond the piece it parsed (a fast server's next tokens) is
    // parsed too, without another round of I/O, so that it goes on as one piece with one write.
    void parse_buffered() {
        while (!parser_.is_done() && buf_.size() > 0 && parser_.get().body().size > 0) {
            beast::error_code ec;
            std::size_t used = parser_.put(buf_.data(), ec);
            buf_.consume(used);
            if (ec || used == 0) return; // need_more, need_buffer, or an error the next read reports
        }
    }

    void close() {
        beast::error_code ignored;
        stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    }

private:
    asio::ip::tcp::endpoint endpoint() {
        beast::error_code ec;
        auto addr = asio::ip::make_address(url_.host == "localhost" ? "127.0.0.1" : url_.host, ec);
        if (!ec) return asio::ip::tcp::endpoint(addr, static_cast<unsigned short>(url_.port));
        asio::ip::tcp::resolver res(ioc_);
        auto r = res.resolve(url_.host, std::to_string(url_.port), ec);
        if (ec || r.empty()) throw Error(Exit::server, fmt::format("{}: cannot resolve {}: {}", where_, url_.host, ec.message()));
        return *r.begin();
    }

    // Starts an operation (`start` gets the completion to call) and runs it to its end, waking
    // every 100 ms to look for Ctrl-C; returns its error.
    template <class Start>
    beast::error_code run(Start start) {
        beast::error_code ec;
        bool done = false;
        start([&](beast::error_code e) {
            ec = e;
            done = true;
        });
        ioc_.restart();
        while (!done) {
            ioc_.run_one_for(std::chrono::milliseconds(100));
            if (!done && cancelled_ && cancelled_()) {
                interrupted_ = true;
                beast::error_code ignored;
                stream_.socket().close(ignored);
            }
        }
        return ec;
    }

    template <class Start>
    void await(Start start, const char* phase, Millis limit) {
        if (auto ec = run(start)) throw fail(ec, phase, limit);
    }

    // The phase's deadline, or what is left of the total one when that comes first.
    Millis deadline(Millis phase) {
        total_binds_ = false;
        if (phase.count() <= 0) phase = Millis(std::int64_t{1} << 40); // 0: no limit (about 35 years)
        if (!t_.total) return phase;
        auto left = std::chrono::duration_cast<Millis>(*t_.total - (std::chrono::steady_clock::now() - began_));
        total_binds_ = left < phase;
        return std::max(Millis(1), std::min(phase, left));
    }

    Error fail(const beast::error_code& ec, const char* phase, Millis limit) const {
        if (interrupted_) return Error(Exit::interrupted, "interrupted");
        if (ec == beast::error::timeout) {
            if (total_binds_)
                return Error(Exit::timeout,
                             fmt::format("{}: no complete answer within the total timeout {}", where_, format_duration(*t_.total)));
            return Error(Exit::timeout, fmt::format("{}: {} timed out after {}", where_, phase, format_duration(limit)));
        }
        return Error(Exit::server, fmt::format("{}: {}: {}", where_, phase, ec.message()));
    }

    const Url& url_;
    const HttpTimeouts& t_;
    const std::function<bool()>& cancelled_;
    asio::io_context ioc_;
    beast::tcp_stream stream_;
    std::chrono::steady_clock::time_point began_;
    std::string where_;
    bool interrupted_ = false;
    bool total_binds_ = false; // the running phase ends at the total deadline, not its own
    beast::flat_buffer buf_;
    http::response_parser<http::buffer_body> parser_;
};

http::request<http::string_body> make_request(const Url& url, const UpstreamRequest& r) {
    http::request<http::string_body> req{r.method == "GET" ? http::verb::get : http::verb::post, url.base + r.path, 11};
    req.set(http::field::host, fmt::format("{}:{}", url_host(url.host), url.port)); // RFC 7230: [::1]:PORT
    req.set(http::field::user_agent, "llmctl");
    if (r.method != "GET") req.set(http::field::content_type, r.content_type);
    req.set(http::field::accept, r.accept);
    if (!r.bearer.empty()) req.set(http::field::authorization, "Bearer " + r.bearer);
    req.body() = r.body;
    if (r.method != "GET") req.prepare_payload();
    return req;
}

} // namespace

void http_forward(const Url& url, const UpstreamRequest& r, const HttpTimeouts& t, const std::function<void(const HttpHead&)>& on_head,
                  const std::function<void(std::string_view)>& on_body, const std::function<bool()>& cancelled) {
    Exchange x(url, r.path, t, cancelled);
    x.connect();
    x.send(make_request(url, r));
    on_head(x.read_header());
    x.read_body(on_body);
    x.close();
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
            ok = head.status / 100 == 2;
        },
        [&](std::string_view piece) {
            if (ok)
                on_body(piece);
            else if (result.error_body.size() < 64 * 1024)
                result.error_body.append(piece);
        },
        cancelled);
    return result;
}

} // namespace llmctl
