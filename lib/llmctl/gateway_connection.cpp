#include "llmctl/gateway_connection.hpp"

#include "llmctl/gateway_api.hpp"

#include "llmctl/http_client.hpp"
#include "llmctl/relay_pump.hpp"
#include "llmctl/upstream_pool.hpp"
#include "llmctl/upstream_route.hpp"

#include <boost/beast/http/verb.hpp>
#include <fmt/format.h>
#include <sys/epoll.h>
#include <utility>

namespace llmctl {

namespace {

using clock = std::chrono::steady_clock;

// Watch 0 is the client's socket, watch 1 the model server's: while a quick call relays, and
// from one request to the next while its connection is kept (readable then only when the server
// closed it).
class LoopConnection final : public LoopResident {
public:
    LoopConnection(ConnectionHost& host, std::unique_ptr<ClientConnection> c, bool first) : host_(host), c_(std::move(c)), first_(first) {}
    ~LoopConnection() override { release_claim(); }

    void on_adopted() override {
        c_->defer_writes(true); // a loop never waits for a client to read
        guarded([&] {
            if (!home_) home_ = &loop();
            if (std::exchange(call_moved_, false))
                after_call_step(); // (its watches, on this loop)
            else
                next_request();
        });
    }

    void on_ready(int slot, std::uint32_t events) override {
        guarded([&] { ready(slot, events); });
    }

    std::chrono::steady_clock::time_point deadline() const override {
        switch (state_) {
        case State::reading: return std::min(read_deadline(), kept_until());
        case State::calling: return call_->deadline();
        case State::flushing: return c_->deferred_deadline();
        case State::asking: break;
        }
        return clock::time_point::max();
    }

    void on_deadline() override {
        guarded([&] { deadline_passed(); });
    }

private:
    enum class State { reading, asking, calling, flushing };

    // What a step throws (it should not: out of memory, the loop's epoll refusing a socket) ends
    // this connection alone, told in the log. (Never while asking: the broker's step, once handed
    // over, is the last thing a step does.)
    template <class Step>
    void guarded(Step step) {
        try {
            step();
        } catch (const std::exception& e) {
            host_.log(fmt::format("{}: {}", c_ ? c_->peer() : std::string("?"), e.what()));
            close();
        }
    }

    void ready(int slot, std::uint32_t events) {
        if (slot == 1 && state_ != State::calling) return drop_kept(); // (closed by the server, or worse)
        if (slot == 0 && state_ != State::reading && (events & EPOLLIN) && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
            in_muted_ = true; // the client sends before its answer has gone: read after it
            watch_client(state_ == State::flushing || (call_ && call_->client_pending()));
        }
        switch (state_) {
        case State::reading: read_request(); break;
        case State::calling:
            if (slot == 1) {
                call_->upstream_ready();
                ++upstream_reads_;
            } else {
                call_->client_ready(events);
            }
            after_call_step();
            if (state_ == State::calling && made_call_->stream) gather_or_scatter();
            break;
        case State::flushing: flush(events); break;
        case State::asking: break;
        }
    }

    void deadline_passed() {
        if (state_ == State::calling) {
            call_->deadline_passed();
            after_call_step();
            return;
        }
        if (state_ == State::reading && clock::now() >= kept_until()) {
            let_go_of_kept();
            if (clock::now() < read_deadline()) return;
        }
        close(); // no whole request in time, a client that does not read, or a stop while it was idle
    }

    // The model server's connection is kept from one request to the next for a while only: then
    // the process's pool has it, for any connection's request (a client that sits idle does not
    // hold a connection of its own to the server, which may give each one a thread).
    clock::time_point kept_until() const { return kept_.fd.valid() ? kept_since_ + k_kept_for : clock::time_point::max(); }

    // The kept connection, no longer watched, to the process's pool.
    void let_go_of_kept() {
        if (!kept_.fd.valid()) return;
        watch(1, -1, 0);
        keep_connection(kept_.host, kept_.port, std::move(kept_.fd));
        release_claim();
    }

    void drop_kept() {
        watch(1, -1, 0);
        kept_.fd = Fd();
        release_claim();
    }

    // This connection's claim on one of the connections a model's server may have kept by
    // callers (at most its max_concurrent: upstream_pool.hpp), held from the request whose
    // connection it kept until it lets go of it (the next call uses it meanwhile). The claim is
    // always for kept_'s server: a call to another server lets go of kept_ first.
    bool claim_kept(int cap) {
        if (!claimed_) claimed_ = claim_kept_connection(kept_.host, kept_.port, cap);
        return claimed_;
    }
    void release_claim() {
        if (claimed_) release_kept_connection(kept_.host, kept_.port);
        claimed_ = false;
    }

    // Between requests, and while a stop waits for the connections: the idle wait ends at once.
    clock::time_point read_deadline() const {
        const ReadLimits& limits = policy_->settings.limits;
        switch (phase_) {
        case ClientConnection::ReadPhase::idle:
            if (host_.stopping()) return clock::time_point::min();
            return phase_since_ + (first_ ? limits.header_timeout : Millis(75'000));
        case ClientConnection::ReadPhase::header: return phase_since_ + limits.header_timeout;
        case ClientConnection::ReadPhase::body: return phase_since_ + limits.body_timeout;
        }
        return clock::time_point::max();
    }

    // A long stream goes on on the loop that gathers them while it has room, and back home if
    // that loop falls behind (relay_pump.hpp); the connection comes home for its next request
    // anyway (requests are read, and their leases taken, on every loop).
    void gather_or_scatter() {
        PumpLoop* to = nullptr;
        if (upstream_reads_ == k_reads_of_a_long_stream)
            to = &host_.limits_for(*policy_).pump->stream_loop(loop());
        else if (&loop() != home_ && upstream_reads_ > k_reads_of_a_long_stream && RelayPump::falls_behind(loop()))
            to = home_;
        if (!to || to == &loop()) return;
        call_moved_ = true;
        move_to(*to);
    }

    void next_request() {
        if (!c_->keep_alive() || host_.stopping()) return close();
        if (home_ != &loop()) return move_to(*home_); // (on_adopted there calls this again)
        state_ = State::reading;
        policy_ = host_.policy();
        phase_ = ClientConnection::ReadPhase::idle;
        phase_since_ = clock::now();
        in_muted_ = false;
        if (c_->has_buffered()) return read_request(); // (sent with the last one)
        watch_client(false);
    }

    void read_request() {
        std::optional<ReadResult> r = c_->read_at_hand(req_, policy_->settings.limits);
        if (!r) {
            auto phase = c_->read_phase();
            if (phase != phase_) {
                phase_ = phase;
                phase_since_ = clock::now();
            }
            watch_client(false);
            return;
        }
        first_ = false;
        if (*r != ReadResult::request) {
            try {
                host_.refuse_unreadable(*r, *c_, policy_->settings.limits);
            } catch (const ClientGone&) {}
            c_->end_after_this();
            return flush_then_next();
        }
        began_ = clock::now();
        policy_ = host_.policy(); // a reload while the connection sat idle counts for this request
        dispatch();
    }

    // The client's socket, one registration from request to request: readable (a request, or
    // its hangup) and, while it holds bytes back, writable. What it sends before its answer has
    // gone mutes the readable side until the answer has gone (what it sent is read after it).
    void watch_client(bool for_room) { watch(0, c_->fd(), EPOLLRDHUP | (in_muted_ ? 0u : EPOLLIN) | (for_room ? EPOLLOUT : 0u)); }

    bool needs_thread() const {
        std::string_view target(req_.target().data(), req_.target().size());
        std::string_view path = target.substr(0, target.find('?'));
        const bool get = req_.method() == boost::beast::http::verb::get;
        if (is_api_target(path)) return true; // the dashboard's API: the state file, a followed log, a start or stop
        return get && (path == "/v1/models" || path == "/metrics" || is_upstream_target(std::string(target))); // they read the state file
    }

    void dispatch() {
        out_ = {};
        model_.clear();
        if (needs_thread()) {
            try {
                if (host_.answer_at_door(req_, *c_, *policy_, out_)) return answered(); // (refused: no thread)
            } catch (const ClientGone&) {
                c_->end_after_this();
                return answered();
            }
            return to_thread(std::nullopt);
        }
        std::optional<ProxyCall> call;
        try {
            call = host_.front(req_, *c_, *policy_, out_, model_);
        } catch (const ClientGone&) {
            c_->end_after_this();
        }
        if (!call) return answered();
        if (!call->takes_lease || call->model->external()) return to_thread(std::move(call));
        call_.emplace(host_.state_dir(), *call, host_.limits_for(*policy_), *c_, &kept_);
        made_call_ = std::move(call);
        upstream_reads_ = 0;
        host_.call_began();
        state_ = State::asking;
        if (call_->take_spare()) return slot_answered();
        PumpLoop* loop = &this->loop();
        call_->ask_for_slot([this, loop] { loop->post([this] { slot_answered(); }); });
    }

    void slot_answered() {
        call_->slot_answered();
        after_call_step();
    }

    void after_call_step() {
        if (call_->state() != QuickCall::State::asking) let_go_of_kept(); // (the call did not take it: another server's)
        switch (call_->state()) {
        case QuickCall::State::asking: return;
        case QuickCall::State::relaying: {
            state_ = State::calling;
            const bool pending = call_->client_pending();
            watch(1, call_->upstream_fd(), call_->upstream_connecting() ? std::uint32_t{EPOLLOUT} : pending ? 0u : std::uint32_t{EPOLLIN});
            watch_client(pending);
            return;
        }
        case QuickCall::State::ended:
            out_ = call_->outcome();
            end_call(true);
            return answered();
        case QuickCall::State::declined: end_call(false); return to_thread(std::move(made_call_));
        }
    }

    // The model server's connection stays watched when this connection keeps it for its next
    // request (no epoll_ctl from one to the next); else it is no longer watched before the call
    // lets go of it (kept in the pool, it may be watched by another loop).
    void end_call(bool served) {
        if (served && call_->keep_connection(kept_) && claim_kept(made_call_->model->max_concurrent)) {
            watch(1, kept_.fd.get(), EPOLLIN);
            kept_since_ = clock::now();
        } else {
            watch(1, -1, 0);
            if (kept_.fd.valid()) keep_connection(kept_.host, kept_.port, std::move(kept_.fd)); // (no claim: the pool's)
            release_claim();
        }
        call_.reset();
        host_.call_ended(served);
    }

    void answered() {
        host_.access_log(req_, *c_, model_, out_, began_);
        flush_then_next();
    }

    void flush_then_next() {
        if (!c_->has_deferred()) return next_request();
        state_ = State::flushing;
        watch_client(true);
    }

    void flush(std::uint32_t events) {
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) return close();
        try {
            c_->flush_deferred();
        } catch (const ClientGone&) {
            return close();
        }
        if (!c_->has_deferred()) next_request();
    }

    void to_thread(std::optional<ProxyCall> call) {
        let_go_of_kept();
        watch(0, -1, 0);
        WaitingRequest w;
        w.connection = std::move(c_);
        w.req = std::move(req_);
        w.policy = policy_;
        w.call = std::move(call);
        w.model = model_;
        w.began = began_;
        retire();
        host_.to_thread(std::move(w));
    }

    void close() {
        watch(0, -1, 0);
        if (call_) end_call(false);
        let_go_of_kept();
        if (c_) c_->close();
        host_.connection_closed();
        retire();
    }

    ConnectionHost& host_;
    std::unique_ptr<ClientConnection> c_;
    bool first_;
    State state_ = State::reading;
    std::shared_ptr<const GatewayPolicy> policy_;
    ClientConnection::ReadPhase phase_ = ClientConnection::ReadPhase::idle;
    bool in_muted_ = false; // the client's socket is not watched for reading (watch_client)
    clock::time_point phase_since_{};
    HttpRequest req_;
    clock::time_point began_{};
    ProxyOutcome out_;
    std::string model_;
    std::optional<QuickCall> call_;
    std::optional<ProxyCall> made_call_; // for the waiting way, when the quick one declines
    KeptConnection kept_;                // the model server's connection of the last request, while kept
    clock::time_point kept_since_{};
    bool claimed_ = false;     // (claim_kept)
    PumpLoop* home_ = nullptr; // the loop it was given first
    int upstream_reads_ = 0;   // of this call's answer
    bool call_moved_ = false;  // its call goes on on the loop it moves to (gather)
    static constexpr int k_reads_of_a_long_stream = 64;
    static constexpr Millis k_kept_for{1'000};
};

} // namespace

void serve_on_loop(PumpLoop& loop, ConnectionHost& host, std::unique_ptr<ClientConnection> c, bool first) {
    loop.adopt(std::make_unique<LoopConnection>(host, std::move(c), first));
}

} // namespace llmctl
