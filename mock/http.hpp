#pragma once

#include "state.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mock {

namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using Request = http::request<http::string_body>;

// How a request ended, for the access log and the connection loop.
struct Outcome {
    unsigned status = 200;
    bool keep_alive = false; // false closes the connection after this request
    std::string note;        // appended to the access log line, e.g. "(client disconnected)"
};

// Sends a complete JSON response; keep_alive is false if the write failed or the client asked to close.
Outcome respond_json(tcp::socket& socket, const Request& request, http::status status, std::string body,
                     const std::vector<std::pair<std::string, std::string>>& headers = {});

// The same with another content type.
Outcome respond_text(tcp::socket& socket, const Request& request, http::status status, std::string_view content_type, std::string body,
                     const std::vector<std::pair<std::string, std::string>>& headers = {});

struct Dialect;

// Handles a chat or completion request in dialect's JSON, streaming or not, including the stream fault flags.
Outcome handle_generation(tcp::socket& socket, const Request& request, ServerState& state, const Dialect& dialect);

// Handles POST /v1/embeddings: per input 8 numbers that depend only on its text.
Outcome handle_embeddings(tcp::socket& socket, const Request& request, ServerState& state);

// llama-server's own routes: GET /slots (one slot, busy while a generation runs; 503 then with
// ?fail_on_no_slot=1), GET /metrics (Prometheus text), POST /tokenize ({"content"} -> {"tokens"}:
// one number per token, its length in bytes).
Outcome handle_slots(tcp::socket& socket, const Request& request, ServerState& state);
Outcome handle_metrics(tcp::socket& socket, const Request& request, ServerState& state);
Outcome handle_tokenize(tcp::socket& socket, const Request& request, ServerState& state);

// Resolves and binds host:port, or returns nullopt with llama-server's bind error text in error.
std::optional<tcp::acceptor> bind_listener(boost::asio::io_context& io, const Options& options, std::string& error);

// "http://host:port" with the port actually bound (matters for --port 0) and IPv6 hosts bracketed.
std::string listening_url(const tcp::acceptor& acceptor, const Options& options);

class TlsFront;

// Accepts connections forever, serving each on its own detached thread (behind `tls` when given).
[[noreturn]] void accept_loop(tcp::acceptor& acceptor, ServerState& state, TlsFront* tls);

} // namespace mock
