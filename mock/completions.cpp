#include "dialect.hpp"
#include "http.hpp"
#include "process.hpp"

#include <poll.h>
#include <unistd.h>

#include <boost/asio/write.hpp>

#include <chrono>
#include <ctime>
#include <thread>

namespace mock {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
using Clock = std::chrono::steady_clock;

// Counts a chat as in flight for exactly as long as this object lives.
class InFlight {
public:
    explicit InFlight(std::atomic<int>& counter) : counter_(counter) { ++counter_; }
    ~InFlight() { --counter_; }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

private:
    std::atomic<int>& counter_;
};

// Sends SSE events as HTTP/1.1 chunks, or for HTTP/1.0 as a raw body that ends when the connection closes.
class EventStream {
public:
    explicit EventStream(tcp::socket& socket, const Request& request)
        : socket_(socket), version_(request.version()), chunked_(request.version() >= 11), keep_alive_(chunked_ && request.keep_alive()) {}

    // Sends the response header; false if the client is gone.
    bool open() {
        http::response<http::empty_body> response{http::status::ok, version_};
        response.set(http::field::server, "llmctl-mock");
        response.set(http::field::content_type, "text/event-stream");
        response.set(http::field::cache_control, "no-cache");
        response.keep_alive(keep_alive_);
        if (chunked_) response.chunked(true);
        http::response_serializer<http::empty_body> serializer{response};
        http::write_header(socket_, serializer, ec_);
        return !ec_;
    }

    // Writes one event straight to the socket; false if the client is gone.
    bool send(std::string_view event) {
        if (chunked_) {
            net::write(socket_, http::make_chunk(net::buffer(event)), ec_);
        } else {
            net::write(socket_, net::buffer(event), ec_);
        }
        return !ec_;
    }

    // Terminates the chunked body; false if the client is gone.
    bool finish() {
        if (chunked_) net::write(socket_, http::make_chunk_last(), ec_);
        return !ec_;
    }

    bool keep_alive() const { return keep_alive_; }

private:
    tcp::socket& socket_;
    unsigned version_;
    bool chunked_;
    bool keep_alive_;
    beast::error_code ec_;
};

// One completion being produced, with what the request log needs.
struct Generation {
    ServerState& state;
    const Dialect& dialect;
    const ChatRequest& chat;
    ChatReply reply;
    CompletionMeta meta;
    std::int64_t start_ns;

    // Appends the request-log line with "now" as the end time.
    void record() const { state.request_log.record(start_ns, realtime_ns(), chat.stream, chat.last_user_message); }
};

// Absolute schedule (start + i/R) so per-token overhead does not accumulate into drift.
void pace(Clock::time_point start, double rate, std::uint64_t index) {
    if (rate <= 0) return;
    std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(index / rate)));
}

// pace() for a stream, watching the connection meanwhile: false when the client hung up (as a
// server that polls its socket sees at once; the request ends then, not at the next write, so
// the request log's end is when the client went).
bool pace_while_connected(tcp::socket& socket, Clock::time_point start, double rate, std::uint64_t index) {
    if (rate <= 0) return true;
    const auto due = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(index / rate));
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(due - Clock::now());
        if (left.count() <= 0) return true;
        timespec ts{static_cast<time_t>(left.count() / 1'000'000'000), static_cast<long>(left.count() % 1'000'000'000)};
        pollfd p{socket.native_handle(), POLLRDHUP, 0};
        if (::ppoll(&p, 1, &ts, nullptr) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) return false;
    }
}

bool fault_at(const std::optional<std::uint64_t>& flag, std::uint64_t sent) { return flag && *flag == sent; }

[[noreturn]] void crash(const Generation& g, std::uint64_t sent) {
    g.record();
    err_line("mock: simulated crash mid-stream after " + std::to_string(sent) + " tokens");
    ::_exit(7);
}

// Sends nothing more but keeps the connection open until the client gives up, so the
// request-log end time says when the client actually let go.
void stall_until_client_leaves(tcp::socket& socket, std::uint64_t sent) {
    log_line("mock: stalling after " + std::to_string(sent) + " tokens");
    char sink[4096];
    beast::error_code ec;
    while (!ec) socket.read_some(net::buffer(sink), ec);
}

std::string tokens_note(std::string_view what, std::uint64_t sent) {
    return "(" + std::string(what) + " after " + std::to_string(sent) + " tokens)";
}

// A write to the client failed (it closed the connection, or reset it) before the stream's end.
Outcome closed_early(std::uint64_t sent, std::string note) {
    log_line("mock: client closed stream early after " + std::to_string(sent) + " tokens");
    return Outcome{200, false, std::move(note)};
}

Outcome stream_reply(tcp::socket& socket, const Request& request, const Generation& g) {
    const auto& options = g.state.options;
    const auto& tokens = g.reply.tokens;
    EventStream out(socket, request);
    auto client_gone = [&](std::uint64_t sent) {
        g.record();
        return closed_early(sent, tokens_note("client disconnected", sent));
    };
    if (!out.open() || (g.dialect.opening && !out.send(g.dialect.opening(g.meta)))) return client_gone(0);
    const auto start = Clock::now();
    for (std::uint64_t sent = 0;; ++sent) {
        if (fault_at(options.crash_mid_stream, sent)) crash(g, sent);
        if (fault_at(options.stall_after, sent)) {
            stall_until_client_leaves(socket, sent);
            g.record();
            return Outcome{200, false, tokens_note("stalled", sent)};
        }
        if (sent == tokens.size()) break;
        if (sent == 1 && !options.hold_until.empty()) // a test holds the stream open while it looks
            while (::access(options.hold_until.c_str(), F_OK) != 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (!pace_while_connected(socket, start, options.tokens_per_second, sent)) return client_gone(sent);
        const std::string stamped =
            options.stamp_tokens
                ? std::to_string(
                      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count()) +
                      " "
                : std::string();
        if (!out.send(g.dialect.content(g.meta, options.stamp_tokens ? stamped : tokens[sent]))) return client_gone(sent);
    }
    if (!out.send(g.dialect.finish(g.meta, g.reply.finish_reason)) ||
        (g.dialect.usage && !options.no_usage && !out.send(g.dialect.usage(g.meta, g.chat.prompt_tokens, tokens.size())))) {
        return client_gone(tokens.size());
    }
    // Recorded before [DONE]: a client that starts its next request on [DONE] must never overlap this one.
    g.record();
    if (!out.send(done_event) || !out.finish()) return closed_early(tokens.size(), "(client disconnected before [DONE])");
    return Outcome{200, out.keep_alive(), {}};
}

Outcome whole_reply(tcp::socket& socket, const Request& request, const Generation& g) {
    const auto& options = g.state.options;
    const std::uint64_t n = g.reply.tokens.size();
    const auto start = Clock::now();
    // The stream faults apply here too, at the moment the Nth token would have been produced.
    if (options.crash_mid_stream && *options.crash_mid_stream <= n) {
        pace(start, options.tokens_per_second, *options.crash_mid_stream);
        crash(g, *options.crash_mid_stream);
    }
    if (options.stall_after && *options.stall_after <= n) {
        pace(start, options.tokens_per_second, *options.stall_after);
        stall_until_client_leaves(socket, *options.stall_after);
        g.record();
        return Outcome{200, false, tokens_note("stalled", *options.stall_after)};
    }
    if (n > 0) pace(start, options.tokens_per_second, n - 1);
    g.record();
    return respond_json(socket, request, http::status::ok, g.dialect.whole(g.meta, g.reply, g.chat.prompt_tokens));
}

} // namespace

Outcome handle_generation(tcp::socket& socket, const Request& request, ServerState& state, const Dialect& dialect) {
    const std::int64_t start_ns = realtime_ns();
    if (!state.loaded) return respond_json(socket, request, http::status::service_unavailable, loading_json());
    std::string error;
    auto chat = dialect.parse(request.body(), error);
    if (!chat) return respond_json(socket, request, http::status::bad_request, invalid_request_json(error));

    InFlight in_flight(state.chats_in_flight);
    const Options& options = state.options;
    if (options.crash_after_requests && ++state.generations >= *options.crash_after_requests)
        crash_now(options.crash_signal, "crash-after-requests reached");
    if (options.wedge) // health answers; this never does (until the client gives up)
        for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    if (options.fail_on && chat->last_user_message.find(*options.fail_on) != std::string::npos) {
        state.request_log.record(start_ns, realtime_ns(), chat->stream, chat->last_user_message);
        return respond_json(socket, request, http::status::internal_server_error,
                            server_error_json("mock failure: the prompt contains \"" + *options.fail_on + "\" (--fail-on)"));
    }
    if (!options.rate_limit_once.empty() && ::unlink(options.rate_limit_once.c_str()) == 0) {
        state.request_log.record(start_ns, realtime_ns(), chat->stream, chat->last_user_message);
        return respond_json(
            socket, request, http::status::too_many_requests,
            R"json({"error":{"message":"rate limited (--rate-limit-once)","type":"rate_limit_error","param":null,"code":null}})json",
            {{"Retry-After", "1"}});
    }
    CompletionMeta meta{
        std::string(dialect.id_prefix) + std::to_string(::getpid()) + "-" + std::to_string(state.next_id++),
        chat->model.empty() ? options.model_name : chat->model,
        static_cast<std::int64_t>(std::time(nullptr)),
    };
    const Generation generation{state, dialect, *chat, make_reply(*chat, options), std::move(meta), start_ns};
    return chat->stream ? stream_reply(socket, request, generation) : whole_reply(socket, request, generation);
}

} // namespace mock
