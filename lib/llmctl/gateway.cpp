#include "llmctl/gateway.hpp"

#include "llmctl/address.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/gateway_proxy.hpp"
#include "llmctl/gateway_registry.hpp"
#include "llmctl/lease_watch.hpp"
#include "llmctl/model_routes.hpp"
#include "llmctl/openai_error.hpp"
#include "llmctl/process.hpp"
#include "llmctl/request_guard.hpp"
#include "llmctl/shared_starts.hpp"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <condition_variable>
#include <fmt/format.h>
#include <malloc.h>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pthread.h>
#include <sys/resource.h>
#include <thread>

namespace llmctl {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;

namespace {

// A thread per connection, with a small stack: a waiting request costs a parked thread. (Under
// AddressSanitizer frames are several times larger.)
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t k_thread_stack = 8 << 20;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr std::size_t k_thread_stack = 8 << 20;
#else
constexpr std::size_t k_thread_stack = 512 << 10;
#endif
#else
constexpr std::size_t k_thread_stack = 512 << 10;
#endif

void start_thread(std::function<void()> fn) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, k_thread_stack);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    auto* heap_fn = new std::function<void()>(std::move(fn));
    pthread_t t;
    int rc = pthread_create(
        &t, &attr,
        [](void* p) -> void* {
            std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()>*>(p));
            (*f)();
            return nullptr;
        },
        heap_fn);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        delete heap_fn;
        throw Error(Exit::failure, fmt::format("cannot start a thread: {}", std::strerror(rc)));
    }
}

// Many clients need many descriptors: the soft limit goes up to the hard one.
void raise_open_file_limit() {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &r);
    }
}

class Gateway {
public:
    Gateway(const GatewayOptions& o, const Config& cfg) : o_(o), cfg_(cfg) {
        rules_.listen_host = o.listen_host;
        rules_.listen_port = o.listen_port;
        rules_.cors_origins = o.cors_origins;
        rules_.api_key = o.api_key;
    }

    bool run() {
        raise_open_file_limit();
        // A thread per connection would otherwise get up to 8 malloc arenas per core, each keeping
        // what a burst of clients left in it.
        ::mallopt(M_ARENA_MAX, 2);
        asio::io_context ioc;
        tcp::acceptor acceptor(ioc);
        listen(acceptor);
        register_gateway();
        if (o_.on_ready) o_.on_ready(http_url(o_.listen_host, o_.listen_port));
        accept_until_stopped(ioc, acceptor);
        acceptor.close();
        stopping_ = true;
        bool drained = drain();
        unregister_gateway();
        return drained;
    }

    // Why the gateway stopped on its own (a state file of a newer llmctl); nullopt otherwise.
    const std::optional<Error>& fatal() const { return fatal_; }

private:
    // The gateways row `ps` lists (gateway_registry.hpp). A state file of a newer llmctl, which
    // the registry notices within a second, stops the gateway as SIGTERM does.
    void register_gateway() {
        registry_.emplace(o_.state_dir, http_url(o_.listen_host, o_.listen_port), in_flight_, served_,
                          [this](const std::string& line) { log(line); });
        auto asked = std::move(o_.stop_requested);
        o_.stop_requested = [this, asked] { return (registry_ && registry_->must_stop()) || (asked && asked()); };
    }

    // Deletes the row (a clean exit), keeping why the gateway had to stop.
    void unregister_gateway() {
        fatal_ = registry_->fatal();
        registry_.reset();
    }

    void listen(tcp::acceptor& acceptor) {
        boost::system::error_code ec;
        auto addr = asio::ip::make_address(o_.listen_host == "localhost" ? "127.0.0.1" : o_.listen_host, ec);
        if (ec) throw Error(Exit::usage, fmt::format("cannot listen on \"{}\": not an IP address", o_.listen_host));
        tcp::endpoint ep(addr, static_cast<unsigned short>(o_.listen_port));
        acceptor.open(ep.protocol(), ec);
        if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec && addr.is_v6()) acceptor.set_option(asio::ip::v6_only(true), ec);
        if (!ec) acceptor.bind(ep, ec);
        if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
        if (ec)
            throw Error(Exit::usage, fmt::format("cannot listen on {}:{}: {}", url_host(o_.listen_host), o_.listen_port, ec.message()),
                        ec == asio::error::address_in_use ? "another program holds the port: choose another with --listen HOST:PORT" : "");
        if (o_.listen_port == 0) o_.listen_port = acceptor.local_endpoint().port();
        rules_.listen_port = o_.listen_port;
    }

    void accept_until_stopped(asio::io_context& ioc, tcp::acceptor& acceptor) {
        std::optional<tcp::socket> peer;
        bool pending = false;
        while (!(o_.stop_requested && o_.stop_requested())) {
            if (!pending) {
                peer.emplace(ioc);
                pending = true;
                acceptor.async_accept(*peer, [&](boost::system::error_code ec) {
                    pending = false;
                    if (!ec)
                        hand_over(*peer);
                    else
                        accept_failed(ec);
                });
            }
            ioc.restart();
            ioc.run_one_for(std::chrono::milliseconds(100));
            reap_children_now_and_then();
        }
    }

    // The servers this process started are its children: a dead one must not stay a zombie.
    // Once a second, so that a start waiting for its own child's health usually reaps it first
    // (and reports its exit status).
    void reap_children_now_and_then() {
        if (clock::now() - last_reap_ < std::chrono::seconds(1)) return;
        last_reap_ = clock::now();
        reap_exited_children();
        if (++ticks_ % 30 == 0) ::malloc_trim(0); // what a burst of clients left, back to the system
    }

    // Out of descriptors (EMFILE) or memory: the connection waits in the backlog; try again in a
    // while instead of spinning on the same error.
    void accept_failed(const boost::system::error_code& ec) {
        log(fmt::format("cannot accept a connection: {}", ec.message()));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }

    void hand_over(tcp::socket& socket) {
        boost::system::error_code ec;
        auto ep = socket.remote_endpoint(ec);
        std::string peer = ec ? "?" : fmt::format("{}:{}", url_host(ep.address().to_string()), ep.port());
        auto* fd = new Fd(socket.release(ec));
        if (ec) {
            delete fd;
            return;
        }
        {
            std::lock_guard<std::mutex> g(mu_);
            ++connections_;
        }
        try {
            start_thread([this, fd, peer] {
                std::unique_ptr<Fd> owned(fd);
                serve_connection(std::move(*owned), peer);
                std::lock_guard<std::mutex> g(mu_);
                --connections_;
                idle_.notify_all();
            });
        } catch (const Error& e) {
            delete fd;
            log(e.what());
            std::lock_guard<std::mutex> g(mu_);
            --connections_;
        }
    }

    // Waits for the connections to end: each ends after its request in flight. False when some
    // are still open at drain_timeout.
    bool drain() {
        std::unique_lock<std::mutex> g(mu_);
        if (connections_ > 0)
            log(fmt::format("stopping: waiting for {} connection(s) (drain_timeout {})", connections_, format_duration(o_.drain_timeout)));
        auto deadline = clock::now() + (o_.drain_timeout.count() > 0 ? o_.drain_timeout : Millis(0));
        idle_.wait_until(g, deadline, [&] { return connections_ == 0; });
        if (connections_ == 0) return true;
        log(fmt::format("stopping with {} connection(s) still open (drain_timeout reached)", connections_));
        return false;
    }

    // A connection's thread: requests one after another while the client keeps it alive. Nothing
    // thrown here may end the process: a failure ends this connection only.
    void serve_connection(Fd socket, const std::string& peer) noexcept {
        try {
            ClientConnection c(std::move(socket), peer, stopping_);
            try {
                serve_requests(c);
            } catch (const ClientGone&) {
            } catch (const std::exception& e) {
                log(fmt::format("{}: {}", c.peer(), e.what()));
            }
            c.close();
        } catch (...) {}
    }

    void serve_requests(ClientConnection& c) {
        for (bool first = true; !stopping_; first = false) {
            HttpRequest req;
            ReadResult r = c.read(req, o_.limits, first ? o_.limits.header_timeout : Millis(75'000));
            if (r != ReadResult::request) {
                refuse_unreadable(r, c);
                return;
            }
            handle(req, c);
            if (!c.keep_alive()) return;
        }
    }

    void refuse_unreadable(ReadResult r, ClientConnection& c) {
        if (r == ReadResult::too_large)
            answer(c, ApiError{413, fmt::format("the request body is over max_body ({})", format_size(o_.limits.max_body)),
                               "invalid_request_error", "request_too_large", std::nullopt});
        else if (r == ReadResult::header_too_large)
            answer(c, ApiError{431, "the request's headers are too large", "invalid_request_error", "", std::nullopt});
        else if (r == ReadResult::bad_request)
            answer(c, ApiError{400, "not an HTTP/1.1 request", "invalid_request_error", "", std::nullopt});
    }

    void answer(ClientConnection& c, const ApiError& e) {
        std::vector<ClientConnection::Header> h{{"Content-Type", "application/json"}};
        if (e.retry_after) h.push_back({"Retry-After", std::to_string(*e.retry_after)});
        c.respond(e.status, h, openai_error_body(e));
    }

    void answer_json(ClientConnection& c, int status, const nlohmann::json& j, std::vector<ClientConnection::Header> h = {}) {
        h.push_back({"Content-Type", "application/json"});
        c.respond(status, h, j.dump());
    }

    void handle(HttpRequest& req, ClientConnection& c) {
        const auto began = clock::now();
        ProxyOutcome out;
        std::string model;
        std::string target(req.target());
        std::string origin(req[boost::beast::http::field::origin]);
        std::vector<ClientConnection::Header> cors;
        if (!origin.empty() && origin_allowed(rules_, origin)) cors = {{"Access-Control-Allow-Origin", origin}, {"Vary", "Origin"}};
        auto refuse = [&](const ApiError& e) {
            out.status = e.status;
            out.error = e.message;
            answer(c, e);
        };
        if (auto e = check_host_and_origin(rules_, req[boost::beast::http::field::host], origin))
            refuse(*e);
        else if (req.method() == boost::beast::http::verb::options)
            preflight(c, cors, out);
        else if (target == "/health" && req.method() == boost::beast::http::verb::get) {
            out.status = 200;
            answer_json(c, 200, {{"status", "ok"}}, cors);
        } else if (auto k = check_api_key(rules_, req[boost::beast::http::field::authorization]))
            refuse(*k);
        else
            route(req, c, cors, out, model);
        access_log(req, c, model, out, began);
    }

    void preflight(ClientConnection& c, const std::vector<ClientConnection::Header>& cors, ProxyOutcome& out) {
        auto h = cors;
        h.push_back({"Access-Control-Allow-Methods", "GET, POST, OPTIONS"});
        h.push_back({"Access-Control-Allow-Headers", "Authorization, Content-Type"});
        h.push_back({"Access-Control-Max-Age", "600"});
        out.status = 204;
        c.respond(204, h, "");
    }

    void route(HttpRequest& req, ClientConnection& c, const std::vector<ClientConnection::Header>& cors, ProxyOutcome& out,
               std::string& model) {
        std::string target(req.target());
        std::string path = target.substr(0, target.find('?'));
        bool post = req.method() == boost::beast::http::verb::post;
        if (path == "/v1/models" && req.method() == boost::beast::http::verb::get) {
            out.status = 200;
            answer_json(c, 200, models_list(cfg_, o_.state_dir), cors);
            return;
        }
        if (post && (path == "/v1/chat/completions" || path == "/v1/completions" || path == "/v1/embeddings")) {
            model_request(req, c, path, out, model);
            return;
        }
        ApiError e{404, fmt::format("no route for {} {}", std::string(req.method_string()), path), "invalid_request_error", "unknown_url",
                   std::nullopt};
        if (path == "/v1/chat/completions" || path == "/v1/completions" || path == "/v1/embeddings" || path == "/v1/models")
            e = ApiError{405, fmt::format("{} takes {}", path, path == "/v1/models" ? "GET" : "POST"), "invalid_request_error",
                         "method_not_allowed", std::nullopt};
        out.status = e.status;
        out.error = e.message;
        answer(c, e);
    }

    void model_request(HttpRequest& req, ClientConnection& c, const std::string& path, ProxyOutcome& out, std::string& model) {
        auto fail = [&](ApiError e) {
            out.status = e.status;
            out.error = e.message;
            answer(c, e);
        };
        auto body = nlohmann::json::parse(req.body(), nullptr, false);
        if (body.is_discarded() || !body.is_object())
            return fail({400, "the request body is not a JSON object", "invalid_request_error", "invalid_json", std::nullopt});
        auto m = body.find("model");
        if (m == body.end() || !m->is_string() || m->get<std::string>().empty())
            return fail(
                {400, "the request has no \"model\": name one of GET /v1/models", "invalid_request_error", "missing_model", std::nullopt});
        model = m->get<std::string>();
        const ModelConfig* mc = route_model(cfg_, model);
        if (!mc) return fail({404, unknown_model_message(cfg_, model), "invalid_request_error", "model_not_found", std::nullopt});
        model = mc->name;
        *m = upstream_model_name(*mc);
        ProxyCall call;
        call.model = mc;
        call.upstream_path = path;
        call.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        auto s = body.find("stream");
        call.stream = s != body.end() && s->is_boolean() && s->get<bool>();
        ProxyLimits limits;
        limits.max_inflight = cfg_.defaults.max_inflight;
        limits.max_queue = o_.max_queue;
        limits.watch = &watch_;
        ++in_flight_;
        struct Done {
            std::atomic<int>& n;
            std::atomic<std::uint64_t>& served;
            ~Done() {
                --n;
                ++served;
            }
        } done{in_flight_, served_};
        out = proxy_call(o_.state_dir, call, limits, starts_, c);
    }

    void access_log(const HttpRequest& req, const ClientConnection& c, const std::string& model, const ProxyOutcome& out,
                    clock::time_point began) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - began).count();
        log(fmt::format("{} \"{} {}\" model={} status={} queue_ms={} ttfb_ms={} ms={} bytes={}{}", c.peer(),
                        std::string(req.method_string()), std::string(req.target()), model.empty() ? "-" : model, out.status,
                        out.queue_wait.count(), out.first_byte.count(), ms, out.bytes,
                        out.error.empty() ? "" : fmt::format(" error=\"{}\"", out.error.substr(0, 300))));
    }

    void log(const std::string& line) {
        if (!o_.log) return;
        std::lock_guard<std::mutex> g(log_mu_);
        o_.log(line);
    }

    GatewayOptions o_;
    const Config& cfg_;
    GuardRules rules_;
    SharedStarts starts_;
    LeaseWatch watch_{o_.state_dir};
    std::atomic<bool> stopping_{false};
    std::atomic<int> in_flight_{0};
    std::atomic<std::uint64_t> served_{0};
    std::optional<Error> fatal_;
    std::mutex mu_, log_mu_;
    std::condition_variable idle_;
    int connections_ = 0;
    clock::time_point last_reap_ = clock::now();
    unsigned ticks_ = 0;
    std::optional<GatewayRegistry> registry_; // last: its thread logs through the members above
};

} // namespace

GatewayEnd run_gateway(const GatewayOptions& opts, const Config& config) {
    auto gateway = std::make_unique<Gateway>(opts, config);
    GatewayEnd end;
    end.drained = gateway->run();
    end.fatal = gateway->fatal();
    if (!end.drained) (void)gateway.release(); // threads still use it: it must outlive them (the caller _exits)
    return end;
}

} // namespace llmctl
