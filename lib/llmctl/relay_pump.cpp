#include "llmctl/relay_pump.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/sse.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <ctime>
#include <utility>

namespace llmctl {

namespace {

using clock = std::chrono::steady_clock;
constexpr auto k_deadline_look = std::chrono::milliseconds(100); // timeouts are whole seconds: a tenth is near enough

} // namespace

// A task while the pump has it. It lives on the stack of the thread in run(), which waits for
// `done`: the pump never touches it after setting that.
struct PumpLoop::Entry {
    explicit Entry(PumpTask& t) : task(t) {}
    PumpTask& task;
    LoopTag source_tag{this, false, nullptr, 0}, sink_tag{this, true, nullptr, 0};
    bool source_watched = false, sink_watched = false;
    std::uint32_t sink_events = 0;
    bool body_read = false; // the source has given the whole body
    bool ended = false;     // whole (flushed) or failed: handed back after this round of events
    std::size_t index = 0;  // in the pump's list of active tasks
    std::exception_ptr error;
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
};

RelayPump::RelayPump(unsigned loops) {
    if (loops == 0) loops = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < loops; ++i) loops_.push_back(std::make_unique<PumpLoop>());
}

void RelayPump::run(PumpTask& task) { stream_loop(next_loop()).run(task); }

PumpLoop& RelayPump::stream_loop(PumpLoop& here) { return loops_[0]->busy_permille() < k_gather_below ? *loops_[0] : here; }

PumpLoop::PumpLoop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)), wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!epoll_.valid() || !wake_.valid())
        throw Error(Exit::failure, fmt::format("cannot make the relay's event loop: {}", std::strerror(errno)));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr; // the wake-up descriptor
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev);
    thread_ = std::thread([this] { loop(); });
}

PumpLoop::~PumpLoop() {
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    wake();
    thread_.join();
    for (LoopResident* r : adopted_) delete r;
    for (LoopResident* r : residents_) delete r;
}

void PumpLoop::adopt(std::unique_ptr<LoopResident> r) {
    r->loop_ = this;
    {
        std::lock_guard<std::mutex> g(mu_);
        adopted_.push_back(r.release());
    }
    wake();
}

namespace {
thread_local PumpLoop* t_current_loop = nullptr;
} // namespace

PumpLoop* PumpLoop::current() { return t_current_loop; }

void PumpLoop::post(std::function<void()> fn) {
    bool first = false;
    {
        std::lock_guard<std::mutex> g(mu_);
        first = posted_.empty();
        posted_.push_back(std::move(fn));
    }
    if (first && t_current_loop != this) wake(); // (else the loop has been told, or is awake)
}

void PumpLoop::run(PumpTask& task) {
    Entry e(task);
    {
        std::lock_guard<std::mutex> g(mu_);
        incoming_.push_back(&e);
    }
    wake();
    std::unique_lock<std::mutex> l(e.m);
    e.cv.wait(l, [&] { return e.done; });
    if (e.error) std::rethrow_exception(e.error);
}

bool note_stream_read(std::string_view piece) {
    const bool backlogged = sse_event_ends(piece, k_backlog_events) >= k_backlog_events;
    PumpLoop::note_read(backlogged);
    return backlogged;
}

void PumpLoop::note_read(bool backlogged) {
    PumpLoop* l = t_current_loop;
    if (!l) return;
    ++l->round_reads_;
    if (backlogged) ++l->round_backlogged_;
}

// After a round whose reads mostly found backlogs: a short pause before the next wait (see
// note_read). Not while work posted to the loop waits, nor after a round that took as many
// events as one wait hands back (more are ready: nothing to gather).
void PumpLoop::pause_for_backlogs(int wait, bool full_round) {
    const bool backlogged = round_reads_ > 0 && 2 * round_backlogged_ >= round_reads_;
    round_reads_ = round_backlogged_ = 0;
    if (!backlogged || wait == 0 || full_round) return;
    timespec pause{0, std::chrono::duration_cast<std::chrono::nanoseconds>(k_gather_pause).count()};
    ::nanosleep(&pause, nullptr);
    pauses_.fetch_add(1, std::memory_order_relaxed);
}

void PumpLoop::wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
}

void PumpLoop::loop() {
    t_current_loop = this;
    ::prctl(PR_SET_TIMERSLACK, 1000UL); // (1 us: the gathering pause is 30)
    std::vector<Entry*> active;
    constexpr int k_max_events = 64;
    epoll_event events[k_max_events];
    int n = 0;
    window_start_ = clock::now();
    auto next_look = window_start_ + k_deadline_look;
    for (;;) {
        int wait = -1;
        const auto before = clock::now();
        if (!active.empty() || !residents_.empty())
            wait = static_cast<int>(
                std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(next_look - before).count() + 1));
        else
            busy_permille_.store(0, std::memory_order_relaxed); // (nothing to watch: it may sleep for long)
        {
            std::lock_guard<std::mutex> g(mu_);
            if (!posted_.empty()) wait = 0; // (posted by this thread: it was not woken for them)
        }
        pause_for_backlogs(wait, n == k_max_events);
        n = ::epoll_wait(epoll_.get(), events, k_max_events, wait);
        waited_ += clock::now() - before;
        for (int i = 0; i < n; ++i) {
            auto* tag = static_cast<LoopTag*>(events[i].data.ptr);
            if (!tag) {
                std::uint64_t count;
                [[maybe_unused]] auto r = ::read(wake_.get(), &count, sizeof count);
            } else if (tag->resident) {
                on_resident_event(*tag->resident, tag->slot, events[i].events);
            } else {
                on_event(*static_cast<Entry*>(tag->entry), tag->sink, events[i].events);
            }
        }
        {
            std::lock_guard<std::mutex> g(mu_);
            if (stop_ && incoming_.empty() && active.empty() && posted_.empty()) return; // (what was posted runs first)
        }
        take_new(active);
        run_posted();
        if (const auto now = clock::now(); now >= next_look) {
            check_deadlines(active);
            measure_busy(now);
            next_look = now + k_deadline_look;
        }
        hand_back(active);
        bury_retired();
    }
}

// (A window that began before a long sleep with nothing to watch is long, but its busy part is
// short: the product below stays far from overflowing.)
void PumpLoop::measure_busy(clock::time_point now) {
    const auto window = now - window_start_;
    const auto busy = std::max(window - waited_, clock::duration::zero());
    if (window.count() > 0)
        busy_permille_.store(static_cast<int>(std::min<std::int64_t>(1000, busy.count() * 1000 / window.count())),
                             std::memory_order_relaxed);
    waited_ = {};
    window_start_ = now;
}

// The work other threads posted, and the residents they handed over.
void PumpLoop::run_posted() {
    std::vector<std::function<void()>> fns;
    std::vector<LoopResident*> fresh;
    {
        std::lock_guard<std::mutex> g(mu_);
        fns.swap(posted_);
        fresh.swap(adopted_);
    }
    for (LoopResident* r : fresh) {
        r->index_ = residents_.size();
        residents_.push_back(r);
        try {
            r->on_adopted();
        } catch (...) {
            retire(*r);
        }
    }
    for (auto& fn : fns) fn();
}

void PumpLoop::on_resident_event(LoopResident& r, int slot, std::uint32_t events) {
    if (r.retired_) return;
    try {
        r.on_ready(slot, events);
    } catch (...) {
        retire(r);
    }
}

void LoopResident::watch(int slot, int fd, std::uint32_t events) { loop_->set_watch(*this, slot, fd, events); }
void LoopResident::retire() { loop_->retire(*this); }
void LoopResident::move_to(PumpLoop& other) {
    loop_->retire(*this);
    moving_to_ = &other;
}

void PumpLoop::set_watch(LoopResident& r, int slot, int fd, std::uint32_t events) {
    LoopResident::Watch& w = r.watches_[slot];
    if (w.fd == fd && w.events == events) return;
    if (w.fd >= 0 && w.fd != fd) { // another descriptor in this slot: the old one is forgotten
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, w.fd, nullptr);
        w.fd = -1;
        w.events = 0;
    }
    if (events == 0) {
        if (w.fd >= 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, w.fd, nullptr);
        w.fd = -1;
        w.events = 0;
        return;
    }
    w.tag = LoopTag{nullptr, false, &r, slot};
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = &w.tag;
    if (::epoll_ctl(epoll_.get(), w.fd >= 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0)
        throw Error(Exit::failure, fmt::format("the event loop: {}", std::strerror(errno)));
    w.fd = fd;
    w.events = events;
}

// A resident leaves: no more calls; deleted after the round (a later event of the round may still
// name it).
void PumpLoop::retire(LoopResident& r) {
    if (r.retired_) return;
    r.retired_ = true;
    for (int slot = 0; slot < 2; ++slot) set_watch(r, slot, -1, 0);
    retired_.push_back(&r);
}

void PumpLoop::bury_retired() {
    for (LoopResident* r : retired_) {
        residents_[r->index_] = residents_.back();
        residents_[r->index_]->index_ = r->index_;
        residents_.pop_back();
        if (PumpLoop* to = std::exchange(r->moving_to_, nullptr)) {
            r->retired_ = false;
            to->adopt(std::unique_ptr<LoopResident>(r));
        } else {
            delete r;
        }
    }
    retired_.clear();
}

// Ended tasks go back only after a round of events: a later event of the round may still name
// them.
void PumpLoop::hand_back(std::vector<Entry*>& active) {
    for (Entry* e : ended_) {
        forget(*e);
        active[e->index] = active.back(); // (order does not matter: swap with the last)
        active[e->index]->index = e->index;
        active.pop_back();
        std::lock_guard<std::mutex> g(e->m); // (notified under the lock: the waiter may destroy e once it has it)
        e->done = true;
        e->cv.notify_one();
    }
    ended_.clear();
}

void PumpLoop::end(Entry& e, std::exception_ptr error) {
    if (e.ended) return;
    e.ended = true;
    e.error = std::move(error);
    ended_.push_back(&e);
}

void PumpLoop::take_new(std::vector<Entry*>& active) {
    std::deque<Entry*> fresh;
    {
        std::lock_guard<std::mutex> g(mu_);
        fresh.swap(incoming_);
    }
    for (Entry* e : fresh) {
        e->index = active.size();
        active.push_back(e);
        try {
            watch(*e);
        } catch (...) {
            end(*e, std::current_exception());
        }
    }
}

void PumpLoop::on_event(Entry& e, bool sink_side, std::uint32_t events) {
    if (e.ended) return;
    try {
        step(e, sink_side, events);
    } catch (...) {
        end(e, std::current_exception());
    }
}

// The source readable (or hung up: the read finds out), or the sink writable or hung up.
void PumpLoop::step(Entry& e, bool sink_side, std::uint32_t events) {
    if (sink_side) {
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) e.task.sink_gone();
        if (events & EPOLLOUT) e.task.flush_sink();
    } else if (!e.body_read) {
        e.body_read = e.task.read_ready();
    }
    if (e.body_read && !e.task.sink_pending()) {
        end(e, nullptr);
        return;
    }
    watch(e);
}

// The source is read while the sink takes what it is given; while the sink holds bytes back, it
// is waited on instead. The sink's hangup is watched throughout.
void PumpLoop::watch(Entry& e) {
    const bool pending = e.task.sink_pending();
    const bool want_source = !pending && !e.body_read;
    if (want_source != e.source_watched) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = &e.source_tag;
        if (::epoll_ctl(epoll_.get(), want_source ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, e.task.source_fd(), &ev) != 0)
            throw Error(Exit::failure, fmt::format("the relay's event loop: {}", std::strerror(errno)));
        e.source_watched = want_source;
    }
    const std::uint32_t sink_events = EPOLLRDHUP | (pending ? EPOLLOUT : 0u);
    if (!e.sink_watched || sink_events != e.sink_events) {
        epoll_event ev{};
        ev.events = sink_events;
        ev.data.ptr = &e.sink_tag;
        if (::epoll_ctl(epoll_.get(), e.sink_watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, e.task.sink_fd(), &ev) != 0)
            throw Error(Exit::failure, fmt::format("the relay's event loop: {}", std::strerror(errno)));
        e.sink_watched = true;
        e.sink_events = sink_events;
    }
}

void PumpLoop::forget(Entry& e) {
    if (e.source_watched) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, e.task.source_fd(), nullptr);
    if (e.sink_watched) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, e.task.sink_fd(), nullptr);
    e.source_watched = e.sink_watched = false;
}

void PumpLoop::check_deadlines(std::vector<Entry*>& active) {
    const auto now = clock::now();
    for (Entry* e : active) {
        if (e->ended || now < e->task.deadline()) continue;
        try {
            e->task.timed_out();
        } catch (...) {
            end(*e, std::current_exception());
        }
    }
    for (LoopResident* r : residents_) { // (retired ones stay in the list until the round's end)
        if (r->retired_ || now < r->deadline()) continue;
        try {
            r->on_deadline();
        } catch (...) {
            retire(*r);
        }
    }
}

} // namespace llmctl
