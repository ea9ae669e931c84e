#pragma once
// `llmctl serve`'s event loops (epoll), one thread each, one per core. They hold the client
// connections between their events (residents: serve's connections, see gateway_connection), and
// move the rest of a streamed answer for a thread that waits for it (a request that had to wait
// for its model hands its stream over once its next piece is not there yet, and sleeps until it
// ends). Either way a token costs a read and a write, not a thread woken per token.

#include "llmctl/fd.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

namespace llmctl {

// One answer's body on its way: read from a source, written to a sink. Every call is made on the
// pump's thread, one at a time; a call that throws ends the task with that exception.
class PumpTask {
public:
    virtual ~PumpTask() = default;
    virtual int source_fd() const = 0;
    virtual int sink_fd() const = 0;
    // Reads what the source has and hands it to the sink; true once the body has ended.
    virtual bool read_ready() = 0;
    // The sink holds bytes it could not write yet (while it does, the source is not read).
    virtual bool sink_pending() const = 0;
    // Writes what the sink held back, as much as it takes now.
    virtual void flush_sink() = 0;
    // The end of the present wait (for the source, or for the sink to take its bytes).
    virtual std::chrono::steady_clock::time_point deadline() const = 0;
    // That wait ran out, or the sink's peer hung up: throws the error that says so.
    [[noreturn]] virtual void timed_out() = 0;
    [[noreturn]] virtual void sink_gone() = 0;
};

class PumpLoop;
class LoopResident;

// Whether one read of an event stream found a backlog of its events (its server sends faster
// than they are relayed): k_backlog_events or more ends of events in it (sse_event_ends).
// Counting the events, not comparing sizes, keeps a server that writes an event in several
// pieces (a header, then the JSON) or sends a short comment first from looking backlogged on
// every read. Two, although paced streams queued two deep behind a busy loop then make it pause
// too (their tokens wait the pause longer): after a pause, a stream that runs ahead finds eight
// or more events in some runs and fewer in others, and a higher mark let the pauses lapse
// (ARCHITECTURE.md, "A loop also waits less often"). Tells the loop it runs on
// (PumpLoop::note_read).
inline constexpr int k_backlog_events = 2;
bool note_stream_read(std::string_view piece);

// What epoll hands back: a task's source or sink (entry), or a resident's watch.
struct LoopTag {
    void* entry = nullptr;
    bool sink = false;
    LoopResident* resident = nullptr;
    int slot = 0;
};

// Something that lives on a loop between its events, with no thread waiting for it (serve's
// client connections): the loop tells it what its descriptors are ready for and when its deadline
// has passed. Every call is made on the loop's thread, one at a time; what a call throws is its
// own business (the loop retires a resident whose call threw). It leaves by retire(): the loop
// deletes it after the round of events.
class LoopResident {
public:
    virtual ~LoopResident() = default;
    // Its first call, once on the loop.
    virtual void on_adopted() = 0;
    // The descriptor watched as `slot` (0 or 1) is ready for `events` (or hung up).
    virtual void on_ready(int slot, std::uint32_t events) = 0;
    // Looked at every 100 ms: on_deadline is called once it has passed.
    virtual std::chrono::steady_clock::time_point deadline() const = 0;
    virtual void on_deadline() = 0;

protected:
    // Watches `fd` for `events` (EPOLLIN, EPOLLOUT, EPOLLRDHUP; 0: no longer) as watch `slot`.
    // Throws Error when the loop cannot.
    void watch(int slot, int fd, std::uint32_t events);
    void retire();
    // Leaves this loop for `other` after the round (its descriptors no longer watched here): the
    // next call is `other`'s on_adopted.
    void move_to(PumpLoop& other);
    PumpLoop& loop() const { return *loop_; }

private:
    friend class PumpLoop;
    struct Watch {
        int fd = -1;
        std::uint32_t events = 0;
        LoopTag tag;
    };
    PumpLoop* loop_ = nullptr;
    PumpLoop* moving_to_ = nullptr; // (move_to)
    Watch watches_[2];
    std::size_t index_ = 0; // in the loop's list of residents
    bool retired_ = false;
};

// One event loop and its thread: the tasks handed to it, until each ends, and the residents it
// was given, until each retires.
class PumpLoop {
public:
    PumpLoop();
    ~PumpLoop(); // every task must have ended; residents left are deleted
    PumpLoop(const PumpLoop&) = delete;
    PumpLoop& operator=(const PumpLoop&) = delete;
    void run(PumpTask& task);
    // From any thread: `r` lives on this loop from its next round (on_adopted first).
    void adopt(std::unique_ptr<LoopResident> r);
    // From any thread: `fn` runs on the loop's thread in its next round (from the loop's own
    // thread: at the end of this one).
    void post(std::function<void()> fn);
    // The loop whose thread this is, or nullptr.
    static PumpLoop* current();
    // The share of the last tenth of a second its thread spent on events rather than waiting for
    // them, in thousandths (0 while it has nothing to watch).
    int busy_permille() const { return busy_permille_.load(std::memory_order_relaxed); }
    // On a loop's thread (elsewhere nothing): one read of a stream's source found a backlog of its
    // events, or not (note_stream_read). A round whose reads found a backlog in half or more
    // of them pauses k_gather_pause before it waits for the next events, so that the next round
    // finds more pieces of each stream: a server that sends faster than the loop relays then
    // costs one wake-up, read and write for a dozen tokens rather than for two or three, and its
    // writes seldom have a sleeping loop to wake. On the 2-core machine, the mock's unpaced
    // streams: reads per 1,000 tokens 230-330 -> 75-90, serve's CPU per 1,000 tokens 4.8-5.7 ->
    // 3.0-4.0 ms (nginx 5.9-11.3). A loop whose streams' tokens come one at a time (each read
    // finds one) never pauses; where streams queue, their tokens wait up to the pause longer.
    static void note_read(bool backlogged);
    static constexpr std::chrono::microseconds k_gather_pause{30};
    // How many such pauses it has made.
    std::uint64_t gathering_pauses() const { return pauses_.load(std::memory_order_relaxed); }

private:
    friend class LoopResident;
    struct Entry;
    void loop();
    void take_new(std::vector<Entry*>& active);
    void run_posted();
    void on_event(Entry& e, bool sink_side, std::uint32_t events);
    void on_resident_event(LoopResident& r, int slot, std::uint32_t events);
    void step(Entry& e, bool sink_side, std::uint32_t events);
    void watch(Entry& e);
    void forget(Entry& e);
    void check_deadlines(std::vector<Entry*>& active);
    void end(Entry& e, std::exception_ptr error);
    void hand_back(std::vector<Entry*>& active);
    void set_watch(LoopResident& r, int slot, int fd, std::uint32_t events);
    void retire(LoopResident& r);
    void bury_retired();
    void pause_for_backlogs(int wait, bool full_round);
    void wake();
    void measure_busy(std::chrono::steady_clock::time_point now);

    Fd epoll_, wake_;
    std::mutex mu_;
    std::deque<Entry*> incoming_;
    std::vector<LoopResident*> adopted_;
    std::vector<std::function<void()>> posted_;
    bool stop_ = false;
    std::vector<Entry*> ended_; // (the loop's thread's, as are the following)
    std::vector<LoopResident*> residents_;
    std::vector<LoopResident*> retired_;
    std::chrono::steady_clock::duration waited_{}; // in epoll_wait, since window_start_
    std::chrono::steady_clock::time_point window_start_{};
    std::atomic<int> busy_permille_{0};
    int round_reads_ = 0, round_backlogged_ = 0; // (note_read, this round)
    std::atomic<std::uint64_t> pauses_{0};
    std::thread thread_;
};

// The event loops. Connections go to each loop in turn; long streams gather on the first loop
// while it is busy less than k_gather_below of the time (a connection's stream moves there from
// its 64th read, gateway_connection; the rest of a waiting request's body goes there from the
// start). One loop wakes for several streams' tokens where two would each wake for fewer, and
// spends less CPU on each token: on the 2-core machine, whose cores the model servers and the
// clients share too, 64 streams relay 15-40% more tokens/s. Beyond the mark each loop keeps its
// own streams; requests, their leases and short answers stay spread over the loops. A loop busy
// k_behind_from of the time or more has fallen behind (one thread among the model servers' many
// gets a small share of the cores): the streams gathered on it go home.
class RelayPump {
public:
    static constexpr int k_gather_below = 750; // thousandths
    static constexpr int k_behind_from = 985;
    // `loops` event loops (0: one per core).
    explicit RelayPump(unsigned loops = 0);

    // Moves `task`'s body until it ends: returns when it ended whole (its sink flushed), rethrows
    // what ended it otherwise. Neither descriptor may be used by the caller meanwhile.
    void run(PumpTask& task);
    // The next loop in turn (for a resident).
    PumpLoop& next_loop() { return *loops_[next_++ % loops_.size()]; }
    // Where a long stream relayed on `here` goes: the first loop, while it has room.
    PumpLoop& stream_loop(PumpLoop& here);
    static bool falls_behind(const PumpLoop& loop) { return loop.busy_permille() >= k_behind_from; }

private:
    std::vector<std::unique_ptr<PumpLoop>> loops_;
    std::atomic<unsigned> next_{0};
};

} // namespace llmctl
