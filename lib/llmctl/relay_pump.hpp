#pragma once
// One thread that moves the bodies of many streamed answers (`llmctl serve`): the connection
// threads hand a stream over once its next piece is not there yet, and wait for its end. The
// pump waits for all of them at once (epoll), so a token costs a read and a write, not a thread
// woken per token; a connection's thread sleeps until its answer ends.

#include "llmctl/fd.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
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

// One event loop and its thread: the tasks handed to it, until each ends.
class PumpLoop {
public:
    PumpLoop();
    ~PumpLoop(); // every task must have ended
    PumpLoop(const PumpLoop&) = delete;
    PumpLoop& operator=(const PumpLoop&) = delete;
    void run(PumpTask& task);

private:
    struct Entry;
    void loop();
    void take_new(std::vector<Entry*>& active);
    void on_event(Entry& e, bool sink_side, std::uint32_t events);
    void step(Entry& e, bool sink_side, std::uint32_t events);
    void watch(Entry& e);
    void forget(Entry& e);
    void check_deadlines(std::vector<Entry*>& active);
    void end(Entry& e, std::exception_ptr error);
    void hand_back(std::vector<Entry*>& active);
    void wake();

    Fd epoll_, wake_;
    std::mutex mu_;
    std::deque<Entry*> incoming_;
    bool stop_ = false;
    std::vector<Entry*> ended_; // (the loop's thread's)
    std::thread thread_;
};

class RelayPump {
public:
    // `loops` event loops (0: one per core), each task given to the next in turn.
    explicit RelayPump(unsigned loops = 0);

    // Moves `task`'s body until it ends: returns when it ended whole (its sink flushed), rethrows
    // what ended it otherwise. Neither descriptor may be used by the caller meanwhile.
    void run(PumpTask& task);

private:
    std::vector<std::unique_ptr<PumpLoop>> loops_;
    std::atomic<unsigned> next_{0};
};

} // namespace llmctl
