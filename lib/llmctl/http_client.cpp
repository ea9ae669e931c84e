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

HttpResult http_post_stream(const Url& url, const std::string& path, const std::string& body, const std::string& bearer,
                            const HttpTimeouts& t, const std::function<void(std::string_view)>& on_body,
                            const std::function<bool()>& cancelled) {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    auto began = std::chrono::steady_clock::now();
    std::string where = fmt::format("http://{}:{}{}{}", url_host(url.host), url.port, url.base, path);
    bool interrupted = false;
    // Runs the started operation to completion, waking every 100 ms to look for Ctrl-C.
    auto run = [&](bool& done) {
        ioc.restart();
        while (!done) {
            ioc.run_one_for(std::chrono::milliseconds(100));
            if (!done && cancelled && cancelled()) {
                interrupted = true;
                beast::error_code ignored;
                stream.socket().close(ignored);
            }
        }
    };
    bool total_binds = false; // the running phase ends at the total deadline, not its own
    auto deadline = [&](Millis phase) {
        total_binds = false;
        if (phase.count() <= 0) phase = Millis(std::int64_t{1} << 40); // 0: no limit (about 35 years)
        if (!t.total) return phase;
        auto left = std::chrono::duration_cast<Millis>(*t.total - (std::chrono::steady_clock::now() - began));
        total_binds = left < phase;
        return std::max(Millis(1), std::min(phase, left));
    };
    auto fail = [&](const beast::error_code& ec, const char* phase, Millis limit) -> Error {
        if (interrupted) return Error(Exit::interrupted, "interrupted");
        if (ec == beast::error::timeout) {
            if (total_binds)
                return Error(Exit::timeout, fmt::format("{}: no complete answer within the total timeout {}", where, format_duration(*t.total)));
            return Error(Exit::timeout, fmt::format("{}: {} timed out after {}", where, phase, format_duration(limit)));
        }
        return Error(Exit::server, fmt::format("{}: {}: {}", where, phase, ec.message()));
    };

    beast::error_code ec;
    auto addr = asio::ip::make_address(url.host == "localhost" ? "127.0.0.1" : url.host, ec);
    asio::ip::tcp::endpoint ep;
    if (ec) {
        asio::ip::tcp::resolver res(ioc);
        auto r = res.resolve(url.host, std::to_string(url.port), ec);
        if (ec || r.empty()) throw Error(Exit::server, fmt::format("{}: cannot resolve {}: {}", where, url.host, ec.message()));
        ep = *r.begin();
    } else {
        ep = asio::ip::tcp::endpoint(addr, static_cast<unsigned short>(url.port));
    }
    bool done = false;
    stream.expires_after(deadline(t.connect));
    stream.async_connect(ep, [&](beast::error_code e) { ec = e; done = true; });
    run(done);
    if (ec) throw fail(ec, "connect", t.connect);

    http::request<http::string_body> req{http::verb::post, url.base + path, 11};
    req.set(http::field::host, fmt::format("{}:{}", url_host(url.host), url.port)); // RFC 7230: [::1]:PORT
    req.set(http::field::user_agent, "llmctl");
    req.set(http::field::content_type, "application/json");
    req.set(http::field::accept, "text/event-stream, application/json");
    if (!bearer.empty()) req.set(http::field::authorization, "Bearer " + bearer);
    req.body() = body;
    req.prepare_payload();
    done = false;
    stream.expires_after(deadline(t.first_byte));
    http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; done = true; });
    run(done);
    if (ec) throw fail(ec, "sending the request", t.first_byte);

    beast::flat_buffer buf;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    done = false;
    stream.expires_after(deadline(t.first_byte));
    http::async_read_header(stream, buf, parser, [&](beast::error_code e, std::size_t) { ec = e; done = true; });
    run(done);
    if (ec) throw fail(ec, "waiting for the first token", t.first_byte);
    HttpResult result;
    result.status = static_cast<int>(parser.get().result_int());
    bool ok = result.status / 100 == 2;
    char chunk[16 * 1024];
    bool first = true;
    while (!parser.is_done()) {
        parser.get().body().data = chunk;
        parser.get().body().size = sizeof chunk;
        done = false;
        Millis limit = first ? t.first_byte : t.stall;
        stream.expires_after(deadline(limit));
        http::async_read_some(stream, buf, parser, [&](beast::error_code e, std::size_t) { ec = e; done = true; });
        run(done);
        if (ec == http::error::need_buffer) ec = {};
        if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == http::error::partial_message)
            throw Error(Exit::server, fmt::format("{}: the server closed the connection mid-answer", where));
        if (ec) throw fail(ec, first ? "waiting for the first token" : "waiting for the next token (stalled)", limit);
        std::size_t n = sizeof chunk - parser.get().body().size;
        if (n == 0) continue;
        first = false;
        if (ok) on_body(std::string_view(chunk, n));
        else if (result.error_body.size() < 64 * 1024) result.error_body.append(chunk, n);
    }
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    return result;
}

} // namespace llmctl
