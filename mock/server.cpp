#include "chat.hpp"
#include "dialect.hpp"
#include "http.hpp"
#include "tls_front.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

namespace mock {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

constexpr std::uint64_t k_body_limit = 64ull << 20;

std::string path_of(const Request& request) {
    std::string_view target = request.target();
    return std::string(target.substr(0, target.find('?')));
}

Outcome route(tcp::socket& socket, const Request& request, ServerState& state) {
    const std::string path = path_of(request);
    const bool get = request.method() == http::verb::get;
    const bool post = request.method() == http::verb::post;
    if (get && path == "/health") {
        std::this_thread::sleep_for(state.options.health_delay);
        if (!state.loaded) return respond_json(socket, request, http::status::service_unavailable, loading_json());
        return respond_json(socket, request, http::status::ok, R"({"status":"ok"})");
    }
    if (get && (path == "/v1/models" || path == "/models")) {
        return respond_json(socket, request, http::status::ok, models_json(state.options.model_name));
    }
    if (post && (path == "/v1/chat/completions" || path == "/chat/completions")) {
        return handle_generation(socket, request, state, chat_dialect);
    }
    if (post && (path == "/v1/completions" || path == "/completions" || path == "/completion")) {
        return handle_generation(socket, request, state, text_completion_dialect);
    }
    if (post && (path == "/v1/embeddings" || path == "/embeddings")) {
        return handle_embeddings(socket, request, state);
    }
    if (get && path == "/slots") return handle_slots(socket, request, state);
    if (get && path == "/metrics") return handle_metrics(socket, request, state);
    if (post && path == "/tokenize") return handle_tokenize(socket, request, state);
    if (get && path == "/empty") return respond_text(socket, request, http::status::no_content, "text/plain", ""); // (relays' tests)
    return respond_json(socket, request, http::status::not_found, not_found_json());
}

void log_access(const Request& request, const Outcome& outcome, std::chrono::steady_clock::duration elapsed) {
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.3fms", std::chrono::duration<double, std::milli>(elapsed).count());
    std::string line =
        "request " + std::string(request.method_string()) + ' ' + path_of(request) + ' ' + std::to_string(outcome.status) + ' ' + ms;
    if (!outcome.note.empty()) line += ' ' + outcome.note;
    log_line(line);
}

// Serves keep-alive requests in order until the client closes or anything goes wrong.
void serve_connection(tcp::socket socket, ServerState& state) {
    beast::error_code ec;
    socket.set_option(tcp::no_delay(true), ec); // each SSE event must leave immediately
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(k_body_limit);
        http::read_header(socket, buffer, parser, ec);
        if (ec) break;
        // curl waits a second for "100 Continue" on big bodies; answering keeps tests fast.
        if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
            net::write(socket, net::buffer(std::string_view("HTTP/1.1 100 Continue\r\n\r\n")), ec);
            if (ec) break;
        }
        const auto started = std::chrono::steady_clock::now();
        http::read(socket, buffer, parser, ec);
        if (ec) {
            Request bad = parser.release();
            bad.keep_alive(false);
            log_access(
                bad, respond_json(socket, bad, http::status::bad_request, invalid_request_json("malformed HTTP request: " + ec.message())),
                std::chrono::steady_clock::now() - started);
            break;
        }
        Request request = parser.release();
        Outcome outcome;
        try {
            outcome = route(socket, request, state);
        } catch (const std::exception& e) {
            // An escaping exception would terminate the whole server; losing one connection is enough.
            outcome = Outcome{500, false, std::string("(internal error: ") + e.what() + ")"};
        }
        log_access(request, outcome, std::chrono::steady_clock::now() - started);
        if (!outcome.keep_alive) break;
    }
    socket.shutdown(tcp::socket::shutdown_send, ec);
    socket.close(ec);
}

} // namespace

Outcome respond_json(tcp::socket& socket, const Request& request, http::status status, std::string body,
                     const std::vector<std::pair<std::string, std::string>>& headers) {
    return respond_text(socket, request, status, "application/json; charset=utf-8", std::move(body), headers);
}

Outcome respond_text(tcp::socket& socket, const Request& request, http::status status, std::string_view content_type, std::string body,
                     const std::vector<std::pair<std::string, std::string>>& headers) {
    http::response<http::string_body> response{status, request.version()};
    response.set(http::field::server, "llmctl-mock");
    response.set(http::field::content_type, content_type);
    for (const auto& [name, value] : headers) response.set(name, value);
    response.keep_alive(request.keep_alive());
    response.body() = std::move(body);
    response.prepare_payload();
    beast::error_code ec;
    http::write(socket, response, ec);
    Outcome outcome{static_cast<unsigned>(status), !ec && response.keep_alive(), {}};
    if (ec) outcome.note = "(write failed: " + ec.message() + ")";
    return outcome;
}

std::optional<tcp::acceptor> bind_listener(net::io_context& io, const Options& options, std::string& error) {
    auto fail = [&](const std::string& reason) {
        error = "couldn't bind HTTP server socket, hostname: " + options.host + ", port: " + std::to_string(options.port) + ": " + reason;
        return std::nullopt;
    };
    if (options.port_taken) return fail(std::strerror(EADDRINUSE));

    beast::error_code ec;
    tcp::resolver resolver(io);
    auto endpoints =
        resolver.resolve(options.host, std::to_string(options.port), tcp::resolver::numeric_service | tcp::resolver::passive, ec);
    if (ec) return fail(ec.message());
    std::string last_error = "no address for host";
    for (const auto& entry : endpoints) {
        tcp::acceptor acceptor(io);
        const auto endpoint = entry.endpoint();
        acceptor.open(endpoint.protocol(), ec);
        if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
        if (ec) {
            last_error = ec.message();
            continue;
        }
        if (options.reuseport) {
            int one = 1;
            if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
                last_error = std::strerror(errno);
                continue;
            }
        }
        acceptor.bind(endpoint, ec);
        if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
        if (ec) {
            last_error = ec.message();
            continue;
        }
        return acceptor;
    }
    return fail(last_error);
}

std::string listening_url(const tcp::acceptor& acceptor, const Options& options) {
    beast::error_code ec;
    const auto port = acceptor.local_endpoint(ec).port();
    const bool ipv6 = options.host.find(':') != std::string::npos;
    return (options.tls_cert.empty() ? "http://" : "https://") + (ipv6 ? "[" + options.host + "]" : options.host) + ":" +
           std::to_string(port);
}

void accept_loop(tcp::acceptor& acceptor, ServerState& state, TlsFront* tls) {
    auto serve_plain = [&state](tcp::socket s) { serve_connection(std::move(s), state); };
    for (;;) {
        beast::error_code ec;
        tcp::socket socket = acceptor.accept(ec);
        if (ec) {
            // EMFILE and friends are transient; back off instead of spinning.
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
        }
        try {
            if (tls)
                std::thread([tls, serve_plain](tcp::socket s) { tls->serve(std::move(s), serve_plain); }, std::move(socket)).detach();
            else
                std::thread(serve_connection, std::move(socket), std::ref(state)).detach();
        } catch (const std::system_error&) {
            // Out of threads: dropping this connection is the only safe answer.
        }
    }
}

} // namespace mock
