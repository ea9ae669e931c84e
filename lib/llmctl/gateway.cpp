#include "llmctl/gateway.hpp"

#include "llmctl/clock_text.hpp"
#include "llmctl/address.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/gateway_api.hpp"
#include "llmctl/gateway_connection.hpp"
#include "llmctl/gateway_metrics.hpp"
#include "llmctl/gateway_proxy.hpp"
#include "llmctl/gateway_reaper.hpp"
#include "llmctl/gateway_registry.hpp"
#include "llmctl/lease_broker.hpp"
#include "llmctl/lease_watch.hpp"
#include "llmctl/model_routes.hpp"
#include "llmctl/openai_error.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/request_ledger.hpp"
#include "llmctl/state_metrics.hpp"
#include "llmctl/process.hpp"
#include "llmctl/relay_pump.hpp"
#include "llmctl/request_fields.hpp"
#include "llmctl/request_guard.hpp"
#include "llmctl/shared_starts.hpp"
#include "llmctl/systemd_notify.hpp"
#include "llmctl/upstream_pool.hpp"
#include "llmctl/upstream_route.hpp"
#include "llmctl/wal_checkpointer.hpp"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fmt/compile.h>
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

// A thread for each request that waits (for its model's start, its turn in the queue, the state
// file), with a small stack: a waiting request costs a parked thread. (Under AddressSanitizer
// frames are several times larger.)
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

// A body {"stream": true}: the client reads SSE, so it is sent loading comments while the model
// starts.
bool asks_for_stream(std::string_view body) { return read_request_fields(body).stream; }

// The body with its top-level "model" renamed (an alias, or a model whose server knows it by
// another name); it was read as a JSON object.
std::string with_model_name(const std::string& body, std::string name) {
    auto doc = nlohmann::json::parse(body);
    doc["model"] = std::move(name);
    return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A GET or POST through /upstream/ as it goes to the model's server: path, query, body and their
// types unchanged; a POST takes a lease like any model request.
ProxyCall upstream_call(const HttpRequest& req, const ModelConfig& m, const std::string& path) {
    namespace http = boost::beast::http;
    ProxyCall call;
    call.model = &m;
    call.takes_lease = req.method() == http::verb::post;
    call.method = call.takes_lease ? "POST" : "GET";
    call.upstream_path = path;
    call.accept = std::string(req[http::field::accept]);
    if (!call.takes_lease) return call; // a GET sends no body
    call.body = req.body();
    call.content_type = std::string(req[http::field::content_type]);
    call.stream = asks_for_stream(req.body());
    return call;
}

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

using Headers = std::vector<ClientConnection::Header>;

class Gateway final : public ConnectionHost {
public:
    explicit Gateway(const GatewayOptions& o) : o_(o) { install(o.settings); }

    bool run() {
        raise_open_file_limit();
        // A thread per waiting request would otherwise get up to 8 malloc arenas per core, each
        // keeping what a burst of clients left in it; the event loops each need one of their own
        // (two that share one take turns at its lock on every allocation: a futex call each
        // fourth request was), and the few threads that come before them share the rest.
        ::mallopt(M_ARENA_MAX, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) + 4);
        WalCheckpointer checkpointer(o_.state_dir); // (lease decisions never wait on its fsyncs)
        asio::io_context ioc;
        tcp::acceptor acceptor(ioc);
        listen(acceptor);
        open_access_log();
        register_gateway();
        std::string url = http_url(o_.listen_host, o_.listen_port);
        if (o_.on_ready) o_.on_ready(url);
        notify_systemd(fmt::format("READY=1\nSTATUS=serving on {}/v1\nMAINPID={}", url, ::getpid()));
        {
            GatewayReaper reaper(
                o_.state_dir, [this] { return policy()->settings.config; }, policy()->settings.reap_every,
                [this](const std::string& line) { log(line); });
            reaper_ = &reaper;
            accept_until_stopped(ioc, acceptor);
            acceptor.close();
            stopping_ = true;
            notify_systemd("STOPPING=1\nSTATUS=stopping: finishing the requests in flight");
            reaper_ = nullptr;
        }
        bool drained = drain();
        ledger_.flush(); // (before the checkpointer's last checkpoint; a gateway that did not drain is never destroyed)
        unregister_gateway();
        return drained;
    }

    // Why the gateway stopped on its own (a state file of a newer llmctl); nullopt otherwise.
    const std::optional<Error>& fatal() const { return fatal_; }

private:
    std::shared_ptr<const GatewayPolicy> policy() const override {
        std::lock_guard<std::mutex> g(policy_mu_);
        return policy_;
    }

    void install(const GatewaySettings& settings) {
        auto p = std::make_shared<GatewayPolicy>();
        p->settings = settings;
        p->rules.listen_host = o_.listen_host;
        p->rules.listen_port = o_.listen_port;
        p->rules.cors_origins = settings.cors_origins;
        p->rules.allowed_hosts = settings.allowed_hosts;
        p->rules.api_key = settings.api_key;
        std::lock_guard<std::mutex> g(policy_mu_);
        policy_ = std::move(p);
    }

    // SIGHUP or a changed config file: the new settings for the requests that arrive from now
    // on; those in flight finish under the ones they began with. A config that does not load
    // leaves the settings in force.
    void reload_if_asked() {
        if (!o_.reload_requested || !o_.reload || !o_.reload_requested()) return;
        notify_systemd("RELOADING=1\nSTATUS=reloading the config");
        try {
            GatewaySettings s = o_.reload();
            install(s);
            if (reaper_) reaper_->set_period(s.reap_every);
            log(fmt::format("reloaded the config: {} model(s) from {}", s.config->models.size(), s.config->source));
        } catch (const std::exception& e) {
            log(fmt::format("reload failed, the previous config stays in force: {}", e.what()));
        }
        notify_systemd("READY=1\nSTATUS=serving");
    }

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
        install(policy()->settings); // the rules name the port actually bound
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
            reload_if_asked();
        }
    }

    // The servers this process started are its children: a dead one must not stay a zombie.
    // Once a second, so that a start waiting for its own child's health usually reaps it first
    // (and reports its exit status).
    void reap_children_now_and_then() {
        if (clock::now() - last_reap_ < std::chrono::seconds(1)) return;
        last_reap_ = clock::now();
        reap_exited_children();
        close_idle_connections();                 // (to the model servers, unused for 15 s)
        if (++ticks_ % 30 == 0) ::malloc_trim(0); // what a burst of clients left, back to the system
    }

    // Out of descriptors (EMFILE) or memory: the connection waits in the backlog; try again in a
    // while instead of spinning on the same error.
    void accept_failed(const boost::system::error_code& ec) {
        log(fmt::format("cannot accept a connection: {}", ec.message()));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }

    // A new connection lives on an event loop between its requests (LoopConnection).
    void hand_over(tcp::socket& socket) {
        boost::system::error_code ec;
        auto ep = socket.remote_endpoint(ec);
        std::string peer = ec ? "?" : fmt::format("{}:{}", url_host(ep.address().to_string()), ep.port());
        Fd fd(socket.release(ec));
        if (ec) return;
        connection_opened();
        try {
            to_loop(std::make_unique<ClientConnection>(std::move(fd), peer), true);
        } catch (const std::exception& e) {
            log(e.what());
            connection_closed();
        }
    }

    void to_loop(std::unique_ptr<ClientConnection> c, bool first) { serve_on_loop(pump_.next_loop(), *this, std::move(c), first); }

    bool stopping() const override { return stopping_; }
    const std::string& state_dir() const override { return o_.state_dir; }

    void connection_opened() {
        std::lock_guard<std::mutex> g(mu_);
        ++connections_;
    }

    void connection_closed() override {
        std::lock_guard<std::mutex> g(mu_);
        --connections_;
        idle_.notify_all();
    }

    // A request that waits has a thread of its own; the connection goes back to a loop after its
    // answer.
    void to_thread(WaitingRequest w) override {
        auto* j = new WaitingRequest(std::move(w));
        try {
            start_thread([this, j] { serve_on_thread(std::unique_ptr<WaitingRequest>(j)); });
        } catch (const Error& e) {
            std::unique_ptr<WaitingRequest> owned(j);
            log(fmt::format("{}: {}", owned->connection->peer(), e.what()));
            owned->connection->close();
            connection_closed();
        }
    }

    // Nothing thrown here may end the process: a failure ends this connection only.
    void serve_on_thread(std::unique_ptr<WaitingRequest> j) noexcept {
        try {
            ClientConnection& c = *j->connection;
            c.defer_writes(false);
            try {
                if (j->call) {
                    ProxyOutcome out;
                    relay_call(*j->call, c, *j->policy, out);
                    access_log(j->req, c, j->model, out, j->began);
                } else {
                    handle(j->req, c, *j->policy, j->began);
                }
            } catch (const ClientGone&) {
                c.end_after_this();
            } catch (const std::exception& e) {
                log(fmt::format("{}: {}", c.peer(), e.what()));
                c.end_after_this();
            }
            if (c.keep_alive() && !stopping_) {
                to_loop(std::move(j->connection), false);
                return;
            }
            c.close();
        } catch (...) {}
        connection_closed();
    }

    // Waits for the connections to end: each ends after its request in flight. False when some
    // are still open at drain_timeout.
    bool drain() {
        std::unique_lock<std::mutex> g(mu_);
        Millis drain_timeout = policy()->settings.drain_timeout;
        if (connections_ > 0)
            log(fmt::format("stopping: waiting for {} connection(s) (drain_timeout {})", connections_, format_duration(drain_timeout)));
        auto deadline = clock::now() + (drain_timeout.count() > 0 ? drain_timeout : Millis(0));
        while (connections_ > 0 && clock::now() < deadline) {
            idle_.wait_for(g, std::chrono::milliseconds(100), [&] { return connections_ == 0; });
            if (connections_ > 0 && o_.stop_now && o_.stop_now()) {
                log(fmt::format("stopping now (a second signal): {} connection(s) cut", connections_));
                return false;
            }
        }
        if (connections_ == 0) return true;
        log(fmt::format("stopping with {} connection(s) still open (drain_timeout reached)", connections_));
        return false;
    }

    // Logged with "- -" for its request line (what was read of it is not kept).
    void refuse_unreadable(ReadResult r, ClientConnection& c, const ReadLimits& limits) override {
        std::optional<ApiError> e;
        if (r == ReadResult::too_large)
            e = ApiError{413, fmt::format("the request body is over max_body ({})", format_size(limits.max_body)), "invalid_request_error",
                         "request_too_large", std::nullopt};
        else if (r == ReadResult::header_too_large)
            e = ApiError{431, "the request's headers are too large", "invalid_request_error", "", std::nullopt};
        else if (r == ReadResult::bad_request)
            e = ApiError{400, "not an HTTP/1.1 request", "invalid_request_error", "", std::nullopt};
        if (!e) return; // (a close or a timeout: nothing to answer)
        ProxyOutcome out;
        out.status = e->status;
        out.error = e->message;
        out.bytes = answer(c, *e);
        log_access_line(c.peer(), "-", "-", "", out, 0);
    }

    // An answer made here, not relayed; returns the body's size (for the access log).
    std::size_t answer(ClientConnection& c, const ApiError& e, Headers h = {}) {
        h.push_back({"Content-Type", "application/json"});
        if (e.retry_after) h.push_back({"Retry-After", std::to_string(*e.retry_after)});
        std::string body = openai_error_body(e);
        c.respond(e.status, h, body);
        return body.size();
    }

    std::size_t answer_json(ClientConnection& c, int status, const nlohmann::json& j, std::vector<ClientConnection::Header> h = {}) {
        h.push_back({"Content-Type", "application/json"});
        std::string body = j.dump();
        c.respond(status, h, body);
        return body.size();
    }

    void handle(HttpRequest& req, ClientConnection& c, const GatewayPolicy& p, clock::time_point began = clock::now()) {
        ProxyOutcome out;
        std::string model;
        if (auto call = front(req, c, p, out, model)) relay_call(*call, c, p, out);
        access_log(req, c, model, out, began);
    }

    // What the gateway answers itself (errors, /health, preflights, /v1/models) it answers here;
    // a request for a model comes back as the call to make.
    std::optional<ProxyCall> front(HttpRequest& req, ClientConnection& c, const GatewayPolicy& p, ProxyOutcome& out,
                                   std::string& model) override {
        if (answer_at_door(req, c, p, out)) return std::nullopt;
        return route(req, c, p, cors_for(p, req), out, model);
    }

    // The CORS headers of an allowed Origin (none without one).
    static Headers cors_for(const GatewayPolicy& p, const HttpRequest& req) {
        std::string origin(req[boost::beast::http::field::origin]);
        if (!origin.empty() && origin_allowed(p.rules, origin)) return {{"Access-Control-Allow-Origin", origin}, {"Vary", "Origin"}};
        return {};
    }

    // What is answered before any route, with no state read: a refused Host, Origin or key, a
    // preflight, /health, the dashboard's page. True when it answered.
    bool answer_at_door(HttpRequest& req, ClientConnection& c, const GatewayPolicy& p, ProxyOutcome& out) override {
        std::string_view target(req.target().data(), req.target().size());
        const Headers cors = cors_for(p, req);
        const bool get = req.method() == boost::beast::http::verb::get;
        if (auto e = check_host_and_origin(p.rules, req[boost::beast::http::field::host], req[boost::beast::http::field::origin]))
            refuse(c, out, *e);
        else if (req.method() == boost::beast::http::verb::options)
            preflight(c, cors, out);
        else if (target == "/health" && get) {
            out.status = 200;
            out.bytes = answer_json(c, 200, {{"status", "ok"}}, cors);
        } else if (is_dashboard_page(target) && get) {
            ApiOutcome a = answer_dashboard(c, cors);
            out.status = a.status;
            out.bytes = a.bytes;
        } else if (auto k = check_api_key(p.rules, req[boost::beast::http::field::authorization]))
            refuse(c, out, *k, cors);
        else
            return false;
        return true;
    }

    void preflight(ClientConnection& c, const std::vector<ClientConnection::Header>& cors, ProxyOutcome& out) {
        auto h = cors;
        h.push_back({"Access-Control-Allow-Methods", "GET, POST, OPTIONS"});
        h.push_back({"Access-Control-Allow-Headers", "Authorization, Content-Type"});
        h.push_back({"Access-Control-Max-Age", "600"});
        out.status = 204;
        c.respond(204, h, "");
    }

    std::optional<ProxyCall> route(HttpRequest& req, ClientConnection& c, const GatewayPolicy& p,
                                   const std::vector<ClientConnection::Header>& cors, ProxyOutcome& out, std::string& model) {
        std::string target(req.target());
        std::string path = target.substr(0, target.find('?'));
        bool post = req.method() == boost::beast::http::verb::post;
        if (is_api_target(path)) {
            ApiOutcome a = answer_api(std::string_view(req.method_string()), target, c, o_.state_dir, p.config(), stopping_, cors);
            out.status = a.status;
            out.bytes = a.bytes;
            out.error = a.error;
            return std::nullopt;
        }
        if (path == "/metrics" && req.method() == boost::beast::http::verb::get) {
            out.status = 200;
            out.bytes = answer_metrics(c, p, cors);
            return std::nullopt;
        }
        if (path == "/v1/models" && req.method() == boost::beast::http::verb::get) {
            out.status = 200;
            out.bytes = answer_json(c, 200, models_list(p.config(), o_.state_dir), cors);
            return std::nullopt;
        }
        if (post && (path == "/v1/chat/completions" || path == "/v1/completions" || path == "/v1/embeddings"))
            return model_request(req, c, p, path, cors, out, model);
        if (is_upstream_target(target)) return upstream_request(req, c, p, cors, out, model);
        ApiError e{404, fmt::format("no route for {} {}", std::string(req.method_string()), path), "invalid_request_error", "unknown_url",
                   std::nullopt};
        if (path == "/v1/chat/completions" || path == "/v1/completions" || path == "/v1/embeddings" || path == "/v1/models")
            e = ApiError{405, fmt::format("{} takes {}", path, path == "/v1/models" ? "GET" : "POST"), "invalid_request_error",
                         "method_not_allowed", std::nullopt};
        refuse(c, out, e, cors);
        return std::nullopt;
    }

    // An error answer, as the access log will tell it.
    void refuse(ClientConnection& c, ProxyOutcome& out, const ApiError& e, const Headers& cors = {}) {
        out.status = e.status;
        out.error = e.message;
        out.bytes = answer(c, e, cors);
    }

    std::optional<ProxyCall> model_request(HttpRequest& req, ClientConnection& c, const GatewayPolicy& p, const std::string& path,
                                           const Headers& cors, ProxyOutcome& out, std::string& model) {
        auto fail = [&](const ApiError& e) -> std::optional<ProxyCall> {
            refuse(c, out, e, cors);
            return std::nullopt;
        };
        RequestFields fields = read_request_fields(req.body());
        if (fields.shape == BodyShape::too_deep)
            return fail({400, fmt::format("the request body nests arrays and objects deeper than {}", k_max_body_depth),
                         "invalid_request_error", "invalid_json", std::nullopt});
        if (fields.shape == BodyShape::not_json)
            return fail({400, "the request body is not valid JSON (or holds a number beyond a double's range)", "invalid_request_error",
                         "invalid_json", std::nullopt});
        if (fields.shape != BodyShape::object)
            return fail({400, "the request body is JSON but not an object", "invalid_request_error", "invalid_json", std::nullopt});
        if (!fields.model || fields.model->empty())
            return fail(
                {400, "the request has no \"model\": name one of GET /v1/models", "invalid_request_error", "missing_model", std::nullopt});
        model = *fields.model;
        const ModelConfig* mc = route_model(p.config(), model);
        if (!mc) return fail({404, unknown_model_message(p.config(), model), "invalid_request_error", "model_not_found", std::nullopt});
        model = mc->name;
        ProxyCall call;
        call.model = mc;
        call.config = &p.config();
        call.upstream_path = path;
        std::string upstream_name = upstream_model_name(*mc);
        if (upstream_name == *fields.model)
            call.body = std::move(req.body()); // nothing to rewrite: the body goes as it came
        else
            call.body = with_model_name(req.body(), std::move(upstream_name));
        call.stream = fields.stream;
        call.headers = cors;
        return call;
    }

    // /upstream/NAME/PATH: PATH (and its query) and the body to NAME's server as they are. A POST
    // goes as a model request does (lease, start, queue); a GET only looks at a running server.
    std::optional<ProxyCall> upstream_request(HttpRequest& req, ClientConnection& c, const GatewayPolicy& p, const Headers& cors,
                                              ProxyOutcome& out, std::string& model) {
        auto fail = [&](const ApiError& e) -> std::optional<ProxyCall> {
            refuse(c, out, e, cors);
            return std::nullopt;
        };
        UpstreamRoute r = parse_upstream_target(req.target());
        if (r.problem == UpstreamProblem::no_path)
            return fail({404, "no route: /upstream/NAME/PATH passes PATH to the model NAME's server", "invalid_request_error",
                         "unknown_url", std::nullopt});
        const ModelConfig* mc = route_model(p.config(), r.name);
        if (!mc) return fail({404, unknown_model_message(p.config(), r.name), "invalid_request_error", "model_not_found", std::nullopt});
        model = mc->name;
        const auto method = req.method();
        if (method != boost::beast::http::verb::get && method != boost::beast::http::verb::post)
            return fail({405, "/upstream/NAME/PATH takes GET or POST", "invalid_request_error", "method_not_allowed", std::nullopt});
        if (r.problem == UpstreamProblem::unsafe_path)
            return fail({400,
                         fmt::format("the path after /upstream/{} could leave the model's server: it has a dot segment, an empty "
                                     "segment or an encoded separator",
                                     r.name),
                         "invalid_request_error", "invalid_path", std::nullopt});
        ProxyCall call = upstream_call(req, *mc, r.path);
        call.config = &p.config();
        call.headers = cors;
        return call;
    }

    ProxyLimits limits_for(const GatewayPolicy& p) override {
        ProxyLimits limits;
        limits.max_inflight = p.config().defaults.max_inflight;
        limits.max_queue = p.settings.max_queue;
        limits.watch = &watch_;
        limits.broker = &broker_;
        limits.pump = &pump_;
        return limits;
    }

    void call_began() override { ++in_flight_; }
    void call_ended(bool served) override {
        --in_flight_;
        if (served) ++served_;
    }

    void relay_call(const ProxyCall& call, ClientConnection& c, const GatewayPolicy& p, ProxyOutcome& out) {
        ProxyLimits limits = limits_for(p);
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
                    clock::time_point began) override {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - began).count();
        log_access_line(c.peer(), std::string_view(req.method_string()), std::string_view(req.target()), model, out, ms);
        if (out.accounted) account(model, out, began, Millis(ms));
    }

    // Token accounting and this process's metrics: every request for a configured model that
    // takes a slot (a name a client made up is in the access log only: labels and rows stay as
    // few as the models; a GET through /upstream/ is a look at the server, not a request of it).
    // A client that went counts as 499, as chat's Ctrl-C does.
    void account(const std::string& model, const ProxyOutcome& out, clock::time_point began, Millis took) {
        RequestRecord r;
        r.model = model;
        r.via = "serve";
        r.status = out.cancelled ? 499 : out.status;
        r.outcome = out.cancelled ? "cancelled" : out.status / 100 == 2 && out.error.empty() ? "ok" : "error";
        r.queue_wait = out.queue_wait;
        if (out.first_token_at) r.first_token = std::chrono::duration_cast<Millis>(*out.first_token_at - began);
        r.duration = took;
        r.tokens_in = out.tokens_in;
        r.tokens_out = out.tokens_out;
        r.counted = out.tokens_counted;
        metrics_.observe({r.model, r.status, r.queue_wait, r.first_token, r.tokens_in, r.tokens_out});
        ledger_.add(std::move(r));
    }

    // GET /metrics: the state's figures, then this process's.
    std::size_t answer_metrics(ClientConnection& c, const GatewayPolicy& p, const Headers& cors) {
        PromText text;
        write_state_metrics(text, o_.state_dir, &p.config());
        metrics_.write(text, in_flight_.load());
        Headers h = cors;
        h.push_back({"Content-Type", k_prom_content_type});
        const std::string body = text.take();
        c.respond(200, h, body);
        return body.size();
    }

    void log_access_line(std::string_view peer, std::string_view method, std::string_view target, std::string_view model,
                         const ProxyOutcome& out, std::int64_t ms) {
        // (Formatted in a buffer of the stack: a line costs no allocation.)
        fmt::memory_buffer line;
        fmt::format_to(std::back_inserter(line), FMT_COMPILE("{} \"{} {}\" model={} status={} queue_ms={} ttfb_ms={} ms={} bytes={}"), peer,
                       method, target, model.empty() ? std::string_view("-") : model, out.status, out.queue_wait.count(),
                       out.first_byte.count(), ms, out.bytes);
        if (!out.error.empty()) fmt::format_to(std::back_inserter(line), " error=\"{}\"", std::string_view(out.error).substr(0, 300));
        log(std::string_view(line.data(), line.size()));
    }

    // The access log file, shared by every gateway on the state dir (lines appended whole).
    void open_access_log() {
        ensure_state_dir(o_.state_dir);
        std::string path = log_path(o_.state_dir, k_gateway_log_name);
        access_log_ = Fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
        if (!access_log_.valid())
            log(fmt::format("cannot open the access log {}: {} (logging to stderr only)", path, std::strerror(errno)));
        gateway_tag_ = fmt::format("{}:{}", url_host(o_.listen_host), o_.listen_port);
    }

    // A line to stderr (through o_.log) and to the access log file, both with the time; the
    // file's line also names this gateway, as several may share the file.
    // Lines logged on an event loop's thread wait for the end of its round of events and go
    // together (a write for several requests); other threads write theirs at once.
    void log(std::string_view line) override {
        const std::string& stamp = utc_stamp();
        PumpLoop* loop = PumpLoop::current();
        LogBatch own; // (another thread's lines go at once)
        LogBatch& b = loop ? log_batch() : own;
        if (loop && b.err.size() + stamp.size() + line.size() + 2 >= k_log_batch) flush_log_batch();
        if (!b.err.empty()) b.err += '\n';
        b.err.append(stamp).append(1, ' ').append(line);
        b.file.append(stamp).append(" [").append(gateway_tag_).append("] ").append(line).append(1, '\n');
        if (!loop) return write_log(b.err, b.file);
        if (!b.flush_posted) {
            b.flush_posted = true;
            loop->post([this] { flush_log_batch(); });
        }
    }

    struct LogBatch {
        std::string err, file; // lines joined by \n; each line ended by \n
        bool flush_posted = false;
    };
    // (Below PIPE_BUF: a pipe takes each write whole, never mixed with another writer's lines.)
    static constexpr std::size_t k_log_batch = 4000;
    static LogBatch& log_batch() {
        static thread_local LogBatch b;
        return b;
    }
    void flush_log_batch() {
        LogBatch& b = log_batch();
        b.flush_posted = false;
        if (b.err.empty()) return;
        write_log(b.err, b.file);
        b.err.clear();
        b.file.clear();
    }

    // To stderr (through o_.log) and to the access log file: one O_APPEND write of whole lines,
    // so that lines of threads and gateways never mix.
    void write_log(const std::string& err_lines, const std::string& file_lines) {
        if (o_.log) o_.log(err_lines);
        if (access_log_.valid()) [[maybe_unused]]
            auto n = ::write(access_log_.get(), file_lines.data(), file_lines.size()); // a full disk: stderr has it
    }

    // The time to the second, made again when the second changed (the thread's own copy).
    static const std::string& utc_stamp() {
        static thread_local std::time_t made = -1;
        static thread_local std::string stamp;
        std::time_t t = std::time(nullptr);
        if (t == made) return stamp;
        stamp = clock_text(t, Zone::utc, "%Y-%m-%dT%H:%M:%SZ");
        made = t;
        return stamp;
    }

    GatewayOptions o_;
    mutable std::mutex policy_mu_;
    std::shared_ptr<const GatewayPolicy> policy_;
    GatewayReaper* reaper_ = nullptr; // while it runs
    SharedStarts starts_;
    LeaseBroker broker_{o_.state_dir}; // (destroyed after the watcher: its last round makes the last releases)
    LeaseWatch watch_{o_.state_dir};
    RelayPump pump_; // (its tasks are the connections' answers: all ended before it is destroyed)
    GatewayMetrics metrics_;
    RequestLedger ledger_{o_.state_dir}; // (its last batch is written when the gateway ends)
    std::atomic<bool> stopping_{false};
    std::atomic<int> in_flight_{0};
    std::atomic<std::uint64_t> served_{0};
    std::optional<Error> fatal_;
    std::mutex mu_;
    Fd access_log_;
    std::string gateway_tag_;
    std::condition_variable idle_;
    int connections_ = 0;
    clock::time_point last_reap_ = clock::now();
    unsigned ticks_ = 0;
    std::optional<GatewayRegistry> registry_; // last: its thread logs through the members above
};

} // namespace

GatewayEnd run_gateway(const GatewayOptions& opts) {
    auto gateway = std::make_unique<Gateway>(opts);
    GatewayEnd end;
    end.drained = gateway->run();
    end.fatal = gateway->fatal();
    if (!end.drained) (void)gateway.release(); // threads still use it: it must outlive them (the caller _exits)
    return end;
}

} // namespace llmctl
