#include "llmctl/gateway_proxy.hpp"

#include "llmctl/address.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/http_client.hpp"
#include "llmctl/prober.hpp"
#include "llmctl/lease_broker.hpp"
#include "llmctl/lease_watch.hpp"
#include "llmctl/openai_error.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/relay_pump.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/shared_starts.hpp"
#include "llmctl/slots.hpp"
#include "llmctl/store.hpp"
#include "llmctl/supervisor.hpp"
#include "llmctl/token_tally.hpp"

#include <cstdlib>
#include <fmt/format.h>
#include <sys/epoll.h>
#include <thread>

namespace llmctl {

namespace {

using clock = std::chrono::steady_clock;

// The client went first: the access log's 499 (nginx's "client closed request") when nothing of
// its answer had gone, and the outcome token accounting counts as cancelled.
void client_went(ProxyOutcome& out) {
    out.error = "the client closed the connection";
    out.cancelled = true;
    if (!out.status) out.status = 499;
}

std::chrono::milliseconds since(clock::time_point t) { return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t); }

// Where the request goes and with which key.
struct Target {
    Url url;
    std::string bearer;
    std::optional<ServerRow> row; // a managed model's server
};

// The answer to the client, begun early (SSE comments while a model loads) or by the upstream's
// head; an error becomes an HTTP answer before it began, an SSE error event after when the answer
// is SSE (by its content type), else the end of the connection with the body cut short.
class Answer {
public:
    Answer(ClientConnection& client, const ProxyCall& call, ProxyOutcome& out)
        : client_(client), stream_(call.stream), headers_(call.headers), out_(out) {}

    bool begun() const { return begun_; }

    // ": loading NAME 12s" every 2 s while a streaming client waits for its model to start.
    void loading(const std::string& name, Millis elapsed) {
        if (!stream_) return;
        if (begun_ && elapsed - last_note_ < Millis(2'000)) return;
        if (!begun_) begin(200, k_sse);
        last_note_ = elapsed;
        piece(fmt::format(": loading {} {}s\n\n", name, elapsed.count() / 1000));
    }

    void head(const HttpHead& h) {
        out_.status = h.status;
        if (h.status / 100 == 2) tally_.emplace(is_sse(h.content_type));
        if (begun_) {
            upstream_failed_ = h.status / 100 != 2;
            return;
        }
        if (h.status == 204 || h.status == 304) { // no body by its status: no chunked framing either
            client_.respond_without_body(h.status, headers_);
            begun_ = true;
            return;
        }
        begin(h.status, h.content_type.empty() ? "application/json" : h.content_type, h.body_at_hand, h.retry_after);
    }

    void body(std::string_view data, bool last) {
        if (upstream_failed_) { // after our own 200: the upstream's error body becomes an event (its first 64 KiB)
            constexpr std::size_t k_kept = 64 * 1024;
            if (failed_body_.size() < k_kept) failed_body_.append(data.substr(0, k_kept - failed_body_.size()));
            return;
        }
        note_stream_read(data); // (a read of anything else finds no events: never a backlog)
        if (tally_ && tally_->feed(data)) out_.first_token_at = clock::now();
        piece(data, last);
    }

    // The tokens counted so far go to the outcome (an answer cut short counts what it relayed).
    void settle() {
        if (!tally_) return;
        tally_->finish();
        out_.tokens_in = tally_->tokens_in();
        out_.tokens_out = tally_->tokens_out();
        out_.tokens_counted = tally_->counted();
        tally_.reset();
    }

    void finish() {
        settle();
        if (upstream_failed_) {
            ApiError e;
            e.status = out_.status;
            e.message = fmt::format("the model's server answered HTTP {}: {}", out_.status, failed_body_.substr(0, 2000));
            fail(e);
            return;
        }
        client_.end_stream();
    }

    void fail(const ApiError& e) {
        settle();
        out_.error = e.message;
        if (!begun_) {
            out_.status = e.status;
            std::vector<ClientConnection::Header> h = headers_;
            h.push_back({"Content-Type", "application/json"});
            if (e.retry_after) h.push_back({"Retry-After", std::to_string(*e.retry_after)});
            std::string body = openai_error_body(e);
            out_.bytes += body.size();
            client_.respond(e.status, h, body);
            return;
        }
        client_.end_after_this();
        if (!sse_) { // no final chunk: the client sees the body cut short (after the head, if held)
            try {
                client_.stream_piece({});
            } catch (const ClientGone&) {}
            return;
        }
        piece(openai_error_event(e));
        client_.end_stream();
    }

private:
    static constexpr std::string_view k_sse = "text/event-stream";
    static bool is_sse(std::string_view content_type) { return content_type.substr(0, k_sse.size()) == k_sse; }

    // The head, held back to go with the first piece when that is at hand; a server's Retry-After
    // (its 429 or 503) goes on to the client.
    void begin(int status, std::string_view content_type, bool held = false, std::optional<int> retry_after = std::nullopt) {
        std::vector<ClientConnection::Header> h = headers_;
        h.push_back({"Content-Type", std::string(content_type)});
        h.push_back({"Cache-Control", "no-cache"});
        if (retry_after) h.push_back({"Retry-After", std::to_string(*retry_after)});
        client_.begin_stream(status, h, held);
        begun_ = true;
        sse_ = is_sse(content_type);
        out_.status = status;
    }
    void piece(std::string_view data, bool last = false) {
        out_.bytes += data.size();
        client_.stream_piece(data, last);
    }

    ClientConnection& client_;
    bool stream_;
    std::vector<ClientConnection::Header> headers_;
    ProxyOutcome& out_;
    bool begun_ = false, upstream_failed_ = false;
    bool sse_ = false; // the answer is an event stream: an error after it began is an event
    Millis last_note_{0};
    std::string failed_body_;
    std::optional<TokenTally> tally_;
};

Target external_target(const ModelConfig& m) {
    Target t;
    t.url = external_url(m);
    t.bearer = external_api_key(m);
    return t;
}

// Where a running row's server answers, or nothing.
std::optional<Url> running_url(const ServerRow& row) {
    // (A server that died since the last look, 250 ms at most ago, refuses the connection: the
    // relay's error says so.)
    if (row.status != "running" || !row.port || !is_alive_lately(row.server, Millis(250))) return std::nullopt;
    return server_url(row.host, static_cast<int>(*row.port));
}

// The server of a running row, or nothing.
std::optional<Target> target_of(std::optional<ServerRow> row) {
    std::optional<Url> url = row ? running_url(*row) : std::nullopt;
    if (!url) return std::nullopt;
    Target t;
    t.url = std::move(*url);
    t.row = std::move(row);
    return t;
}

// The running server of a managed model, or nothing.
std::optional<Target> running_server(const std::string& dir, const ModelConfig& m) {
    std::optional<ServerRow> row;
    if (auto store = Store::open_read(state_db_path(dir))) row = find_server(*store, m.name);
    return target_of(std::move(row));
}

// The running server of a managed model as the transaction that granted the slot saw it (a
// restart may have replaced the one that was started for us while we queued).
Target managed_target(const ModelConfig& m, const Slot& slot) {
    if (auto t = target_of(slot.server_at_grant())) return *t;
    throw Error(Exit::server, fmt::format("{} is not running (it stopped while the request waited)", m.name), "send the request again");
}

// The request as it goes to the model's server (both ways of a call).
UpstreamRequest upstream_request(const ProxyCall& call, const Target& t) {
    UpstreamRequest r;
    r.method = call.method;
    r.path = call.upstream_path;
    r.body = call.body;
    if (!call.content_type.empty()) r.content_type = call.content_type;
    if (!call.accept.empty()) r.accept = call.accept;
    r.bearer = t.bearer;
    return r;
}

HttpTimeouts timeouts_of(const ModelConfig& m) {
    HttpTimeouts t;
    t.connect = m.connect_timeout;
    t.first_byte = m.first_token_timeout;
    t.stall = m.stall_timeout;
    if (m.request_timeout.count() > 0) t.total = m.request_timeout;
    return t;
}

// The rest of an answer's body, moved by the relay pump: the upstream's pieces through the
// answer to the client, whose writes are deferred meanwhile (kept while it does not read).
class PumpedBody final : public PumpTask {
public:
    PumpedBody(UpstreamCall& up, ClientConnection& client, const PieceFn& on_piece) : up_(up), client_(client), on_piece_(on_piece) {
        client_.defer_writes(true);
    }
    ~PumpedBody() override { client_.defer_writes(false); }
    PumpedBody(const PumpedBody&) = delete;
    PumpedBody& operator=(const PumpedBody&) = delete;

    int source_fd() const override { return up_.fd(); }
    int sink_fd() const override { return client_.fd(); }
    bool read_ready() override { return up_.read_at_hand(on_piece_) == ReadStep::done; }
    bool sink_pending() const override { return client_.has_deferred(); }
    void flush_sink() override {
        client_.flush_deferred();
        if (!client_.has_deferred()) up_.restart_piece_clock(); // (the upstream was not read meanwhile)
    }
    clock::time_point deadline() const override { return client_.has_deferred() ? client_.deferred_deadline() : up_.piece_deadline(); }
    void timed_out() override {
        if (client_.has_deferred()) throw ClientGone(); // it has not read for the write timeout
        up_.piece_timed_out();
    }
    void sink_gone() override { throw ClientGone(); }

private:
    UpstreamCall& up_;
    ClientConnection& client_;
    const PieceFn& on_piece_;
};

// The answer's body to the client: what is at hand on this thread, the rest (a stream's next
// tokens) through the pump when there is one.
// `progress`: the lease to note progress on (see ProgressNote), or none.
void relay_body(UpstreamCall& up, Answer& answer, ClientConnection& client, RelayPump* pump, const std::function<void()>& progress) {
    const PieceFn on_piece = [&](std::string_view piece, bool last) {
        if (progress) progress();
        answer.body(piece, last);
    };
    if (!pump) {
        up.read_all(on_piece);
        return;
    }
    ReadStep step;
    while ((step = up.read_at_hand(on_piece)) == ReadStep::more) {}
    if (step == ReadStep::done) return;
    PumpedBody rest(up, client, on_piece);
    pump->run(rest);
}

// How long to wait before sending a request again that the server answered 429 or 503 with a
// Retry-After (a provider's rate limit): at most 2 retries and 30 s of waiting in all, only while
// nothing of the answer went to the client, and only when the wait leaves a second of the
// request's `left` (request_timeout; none: no limit); nullopt: the answer goes to the client as
// it is.
std::optional<Millis> retry_after(const HttpHead& head, int retries, Millis waited, const Answer& answer, std::optional<Millis> left) {
    constexpr int k_max_retries = 2;
    constexpr Millis k_max_wait{30'000};
    if ((head.status != 429 && head.status != 503) || !head.retry_after || retries >= k_max_retries || answer.begun()) return std::nullopt;
    Millis wait = std::chrono::seconds(*head.retry_after);
    constexpr Millis k_time_to_answer{1'000}; // what a retry needs left after its wait to be worth sending
    if (waited + wait > k_max_wait || (left && wait + k_time_to_answer > *left)) return std::nullopt;
    return wait;
}

// Waits `d` (the slot kept: the retry is the same request); ClientGone when the client leaves.
void wait_while_there(Millis d, ClientConnection& client) {
    for (auto until = clock::now() + d; clock::now() < until;) {
        if (client.peer_gone()) throw ClientGone();
        std::this_thread::sleep_for(std::min<clock::duration>(Millis(100), until - clock::now()));
    }
}

// The request's time limit (request_timeout), shared by its attempts: each gets what is left.
class RequestClock {
public:
    explicit RequestClock(std::optional<Millis> total) : total_(total), began_(clock::now()) {}
    std::optional<Millis> left() const {
        if (!total_) return std::nullopt;
        return std::max(Millis(1), *total_ - std::chrono::duration_cast<Millis>(clock::now() - began_));
    }
    HttpTimeouts for_attempt(HttpTimeouts t) const {
        t.total = left();
        return t;
    }

private:
    std::optional<Millis> total_;
    clock::time_point began_;
};

// The relay, retried (at most 3 times, backing off) while nothing has come back: a refused or
// reset connection, from a server that a restart has just replaced; and after a 429 or 503 that
// says when to come back (retry_after). All attempts together keep to request_timeout.
void relay(const Target& t, const ProxyCall& call, const ModelConfig& m, RelayPump* pump, Answer& answer, ClientConnection& client,
           ProxyOutcome& out, clock::time_point began, const std::function<void()>& progress = {}) {
    const UpstreamRequest r = upstream_request(call, t);
    const HttpTimeouts timeouts = timeouts_of(m);
    const RequestClock request_clock(timeouts.total);
    const std::function<bool()> gone = [&] { return client.peer_gone(); };
    int retries = 0;
    Millis waited{0};
    for (int attempt = 1;; ++attempt) {
        bool got_head = false;
        try {
            const HttpTimeouts attempt_timeouts = request_clock.for_attempt(timeouts); // (the call keeps a reference)
            UpstreamCall up(t.url, r, attempt_timeouts, gone);
            HttpHead head = up.send();
            got_head = true;
            if (auto wait = retry_after(head, retries, waited, answer, request_clock.left())) {
                up.read_all([](std::string_view, bool) {}); // (its error body: the connection stays usable)
                up.finish();
                ++retries;
                waited += *wait;
                wait_while_there(*wait, client);
                attempt = 0; // a new request: its connection may be refused anew
                continue;
            }
            out.first_byte = since(began);
            answer.head(head);
            relay_body(up, answer, client, pump, progress);
            up.finish();
            return;
        } catch (const Error& e) {
            if (e.code() == Exit::interrupted) throw ClientGone();
            if (got_head || e.code() != Exit::server || attempt >= 3) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
        }
    }
}

} // namespace

namespace {

// A step's refusal, answered as it is.
struct Refused {
    ApiError error;
};

SlotRequest slot_request(const ModelConfig& m, const ProxyLimits& limits, std::function<bool()> gone) {
    SlotRequest sr;
    sr.model = m.name;
    sr.max_concurrent = std::max(1, m.max_concurrent);
    sr.managed = !m.external();
    sr.take_if_ready = true; // a running model's request: queued and granted in one transaction
    sr.max_inflight = limits.max_inflight;
    sr.max_queue = limits.max_queue;
    sr.watch = limits.watch;
    sr.broker = limits.broker;
    if (m.queue_timeout.count() > 0) sr.queue_timeout = m.queue_timeout;
    sr.cancelled = std::move(gone);
    return sr;
}

// The lease, queued on arrival; 429 past max_queue.
void take_lease(std::optional<QueuedLease>& lease, const std::string& dir, const SlotRequest& sr) {
    try {
        lease.emplace(dir, sr);
    } catch (const QueueFull& e) {
        throw Refused{ApiError{429, e.what(), "rate_limit_error", "queue_full", 1}};
    }
}

// A managed model's server, started if need be (the start shared with this process's other
// requests for it); 503 when it cannot start.
void ensure_started(const std::string& dir, const ProxyCall& call, SharedStarts& starts, Answer& answer, std::function<bool()> gone) {
    const ModelConfig& m = *call.model;
    if (m.external()) return;
    SharedStarts::Waiting w;
    w.gone = std::move(gone);
    w.progress = [&](Millis elapsed) { answer.loading(m.name, elapsed); };
    try {
        starts.ensure_running(dir, m, w, call.config);
    } catch (const Error& e) {
        if (e.code() == Exit::interrupted) throw ClientGone();
        throw Refused{start_failure_error(e)};
    }
}

// Our turn in the model's queue; 503 after queue_timeout.
Slot wait_for_slot(QueuedLease& lease) {
    try {
        return lease.wait();
    } catch (const Error& e) {
        if (e.code() == Exit::interrupted) throw ClientGone();
        if (e.code() != Exit::timeout) throw;
        throw Refused{ApiError{503, e.what(), "server_error", "queue_timeout", 1}};
    }
}

// Once our slot is released, the next request of this process in the model's queue is looked at
// at once.
struct PokeAtEnd {
    LeaseWatch* watch;
    ~PokeAtEnd() {
        if (watch) watch->poke();
    }
};

// A request in its turn: the lease queued on arrival (429 past max_queue), the model started if
// need be, the slot waited for, then the relay with the lease held to the answer's end.
void relay_in_turn(const std::string& dir, const ProxyCall& call, const ProxyLimits& limits, SharedStarts& starts, Answer& answer,
                   ClientConnection& client, ProxyOutcome& out, clock::time_point began) {
    const ModelConfig& m = *call.model;
    auto gone = [&] { return client.peer_gone(); };
    SlotRequest sr = slot_request(m, limits, gone);
    std::optional<QueuedLease> lease;
    take_lease(lease, dir, sr);
    if (!lease->taken()) ensure_started(dir, call, starts, answer, gone); // (taken: its server runs)
    Slot slot = wait_for_slot(*lease);
    out.queue_wait = since(began);
    Target t = m.external() ? external_target(m) : managed_target(m, slot);
    IdleClockAtEnd idle_clock{dir, t.row, m.idle_timeout};
    ProgressNote progress(dir, m.probe == "completion", limits.broker);
    relay(t, call, m, limits.pump, answer, client, out, began, [&] { progress.byte_arrived(slot.id()); });
    answer.finish();
}

// A look at a model's server (a GET through /upstream/): no lease, no start, no queue, and no
// use for its idle clock (a scraper of /metrics must not keep a model loaded); 503 when it is not
// running.
void relay_if_running(const std::string& dir, const ProxyCall& call, RelayPump* pump, Answer& answer, ClientConnection& client,
                      ProxyOutcome& out, clock::time_point began) {
    const ModelConfig& m = *call.model;
    std::optional<Target> t = m.external() ? external_target(m) : running_server(dir, m);
    if (!t)
        throw Refused{ApiError{503,
                               fmt::format("{} is not running, and a GET through /upstream/ does not start it: start it with "
                                           "`llmctl start {}`, or send a POST (which starts it)",
                                           m.name, m.name),
                               "server_error", "model_not_running", std::nullopt}};
    relay(*t, call, m, pump, answer, client, out, began);
    answer.finish();
}

} // namespace

struct QuickCall::Impl {
    Impl(const std::string& state_dir, const ProxyCall& c, const ProxyLimits& l, ClientConnection& cl, KeptConnection* k)
        : dir(state_dir), call(c), limits(l), client(cl), kept(k), answer(cl, call, out) {
        out.accounted = call.takes_lease;
    }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    // The model server's connection goes only now (kept for the next request when its answer
    // ended whole, unless the caller took it): the caller's loop watched it until it let go of
    // the call. Then the slot.
    ~Impl() {
        try {
            if (up && whole && !connection_taken) up->finish();
        } catch (...) {}
        let_go();
    }

    bool keep_connection(KeptConnection& into) {
        if (!up || !whole || state != State::ended || connection_taken) return false;
        connection_taken = true;
        Fd fd = up->finish_kept();
        if (!fd.valid()) return false;
        into = KeptConnection{connection_key(target->url), target->url.port, std::move(fd)};
        return true;
    }

    // The slot a quick request of the same model has just let go of, if there is one.
    bool take_spare() {
        auto spare = limits.broker->take_spare(call.model->name, clock::now() - k_spare_for);
        if (!spare) return false;
        lease = spare->id;
        granted = spare->granted;
        server = std::move(spare->server);
        return true;
    }

    void ask_for_slot(std::function<void()> answered) {
        SlotRequest sr = slot_request(*call.model, limits, {});
        limits.broker->submit(
            [this, sr](Store& store) {
                if (auto got = take_if_free(store, dir, sr)) {
                    lease = got->id();
                    if (auto row = got->server_at_grant()) server = std::make_shared<const ServerRow>(std::move(*row));
                    got->forget(); // (this call lets go of it: let_go)
                }
            },
            [this, answered = std::move(answered)](std::exception_ptr e) {
                if (e) lease = 0; // (its transaction was undone)
                granted = clock::now();
                answered();
            });
    }

    // The slot's answer: the request goes at once (on a kept connection, or a new one once it is
    // connected), or the call is declined.
    void slot_answered() {
        if (!lease) return decline();
        out.queue_wait = since(began);
        std::optional<Url> url = server ? running_url(*server) : std::nullopt; // (the row is shared, not copied)
        if (!url) return decline();
        target.emplace();
        target->url = std::move(*url);
        req = upstream_request(call, *target);
        timeouts = timeouts_of(*call.model);
        up.emplace(target->url, req, timeouts, no_cancel);
        try {
            sent(up->send_now(kept_for(target->url)));
        } catch (...) {
            failed(std::current_exception());
        }
    }

    // The caller's kept connection, when it is to the server at `url`.
    Fd kept_for(const Url& url) {
        if (!kept || !kept->fd.valid() || kept->host != connection_key(url) || kept->port != url.port) return Fd();
        return std::move(kept->fd);
    }

    void sent(SendStep step) {
        if (step == SendStep::not_sent) return decline();
        connecting = step == SendStep::connecting;
        state = State::relaying;
    }

    // The head once whole, then what has come of the body (one read), while the client takes it.
    void upstream_ready() {
        try {
            if (connecting) return sent(up->send_connected());
            if (!got_head) {
                HttpHead head;
                HeadStep h = up->head_at_hand(head);
                if (h == HeadStep::wait) return;
                if (h == HeadStep::closed_unanswered) return decline();
                got_head = true;
                out.first_byte = since(began);
                answer.head(head);
            }
            if (client.has_deferred()) return;
            if (up->read_at_hand(on_piece) == ReadStep::done) {
                whole = true;
                answer.finish();
                end();
            }
        } catch (...) {
            failed(std::current_exception());
        }
    }

    void client_ready(std::uint32_t events) {
        try {
            if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) throw ClientGone();
            if (!(events & EPOLLOUT)) return;
            client.flush_deferred();
            if (!client.has_deferred()) up->restart_piece_clock(); // (the upstream was not read meanwhile)
        } catch (...) {
            failed(std::current_exception());
        }
    }

    clock::time_point deadline() const {
        if (state != State::relaying) return clock::time_point::max();
        return client.has_deferred() ? client.deferred_deadline() : up->piece_deadline();
    }

    void deadline_passed() {
        try {
            if (client.has_deferred()) throw ClientGone(); // it has not read for the write timeout
            up->piece_timed_out();
        } catch (...) {
            failed(std::current_exception());
        }
    }

    // What ended the relay: told the client as the waiting way tells it, or, before the head of a
    // server that could not be reached, the call declined (the waiting way tries again).
    void failed(std::exception_ptr e) {
        try {
            try {
                std::rethrow_exception(e);
            } catch (const Error& err) {
                if (!got_head && err.code() == Exit::server) return decline();
                answer.fail(api_error_from(err));
            } catch (const ClientGone&) {
                throw;
            } catch (const std::exception& other) {
                answer.fail(api_error_from(Error(Exit::failure, other.what())));
            }
        } catch (const ClientGone&) {
            answer.settle();
            client_went(out);
            client.end_after_this();
        }
        end();
    }

    // The upstream's part is over: the model's idle clock restarts (through the broker: the loop
    // never waits for the state file); the slot goes back when the caller lets go of the call.
    void end() {
        if (target && server) {
            const std::int64_t now = now_ms();
            if (claim_last_used_write(*server, call.model->idle_timeout, now))
                limits.broker->submit([row = server, now](Store& store) { write_last_used(store, *row, now); }, [](std::exception_ptr) {});
        }
        state = State::ended;
    }

    void decline() { state = State::declined; }

    // The slot goes back: as a spare for the next quick request after an answer that ended whole
    // (its server answers), else released (a call declined, failed, or cut short).
    void let_go() {
        if (!lease) return;
        if (whole && state == State::ended)
            limits.broker->release_spare(LeaseBroker::Spare{std::exchange(lease, 0), call.model->name, granted, std::move(server)});
        else
            limits.broker->release(std::exchange(lease, 0));
        if (limits.watch) limits.watch->poke();
    }

    const std::string& dir;
    ProxyCall call;
    ProxyLimits limits;
    ClientConnection& client;
    KeptConnection* kept; // the caller's, or nullptr
    ProxyOutcome out;
    Answer answer;
    clock::time_point began = clock::now();
    State state = State::asking;
    // A slot goes on from request to request as a spare for this long at most after the state
    // file granted it; then a transaction decides again (a stop's drain, other processes' turns).
    static constexpr Millis k_spare_for{200};
    std::int64_t lease = 0;                  // written by the broker's thread before `answered`
    std::shared_ptr<const ServerRow> server; // the model's server row as the grant saw it (shared by its spares)
    clock::time_point granted{};
    std::optional<Target> target;
    UpstreamRequest req;
    HttpTimeouts timeouts;
    const std::function<bool()> no_cancel; // (the loop is never interrupted: a client that leaves hangs up)
    std::optional<UpstreamCall> up;
    bool connecting = false; // a new connection to the model's server: its socket is waited on for room
    bool got_head = false;
    bool whole = false;            // the model server's answer ended whole: its connection may be kept
    bool connection_taken = false; // by the caller (keep_connection)
    ProgressNote progress{dir, call.model->probe == "completion", limits.broker};
    const PieceFn on_piece = [this](std::string_view piece, bool last) {
        progress.byte_arrived(lease);
        answer.body(piece, last);
    };
};

QuickCall::QuickCall(const std::string& state_dir, const ProxyCall& call, const ProxyLimits& limits, ClientConnection& client,
                     KeptConnection* kept)
    : impl_(std::make_unique<Impl>(state_dir, call, limits, client, kept)) {}
QuickCall::~QuickCall() = default;
QuickCall::State QuickCall::state() const { return impl_->state; }
bool QuickCall::take_spare() { return impl_->take_spare(); }
void QuickCall::ask_for_slot(std::function<void()> answered) { impl_->ask_for_slot(std::move(answered)); }
void QuickCall::slot_answered() { impl_->slot_answered(); }
int QuickCall::upstream_fd() const { return impl_->up ? impl_->up->fd() : -1; }
bool QuickCall::upstream_connecting() const { return impl_->connecting; }
bool QuickCall::client_pending() const { return impl_->client.has_deferred(); }
void QuickCall::upstream_ready() { impl_->upstream_ready(); }
void QuickCall::client_ready(std::uint32_t events) { impl_->client_ready(events); }
std::chrono::steady_clock::time_point QuickCall::deadline() const { return impl_->deadline(); }
void QuickCall::deadline_passed() { impl_->deadline_passed(); }
const ProxyOutcome& QuickCall::outcome() const { return impl_->out; }
bool QuickCall::keep_connection(KeptConnection& into) { return impl_->keep_connection(into); }

ProxyOutcome proxy_call(const std::string& dir, const ProxyCall& call, const ProxyLimits& limits, SharedStarts& starts,
                        ClientConnection& client) {
    ProxyOutcome out;
    out.accounted = call.takes_lease;
    Answer answer(client, call, out);
    const auto began = clock::now();
    PokeAtEnd poke{limits.watch}; // (declared first: runs after the slot is released)
    try {
        if (call.takes_lease)
            relay_in_turn(dir, call, limits, starts, answer, client, out, began);
        else
            relay_if_running(dir, call, limits.pump, answer, client, out, began);
    } catch (const Refused& r) {
        out.queue_wait = since(began);
        answer.fail(r.error);
    } catch (const ClientGone&) {
        answer.settle();
        client_went(out);
        client.end_after_this();
    } catch (const Error& e) {
        answer.fail(api_error_from(e));
    }
    return out;
}

} // namespace llmctl
