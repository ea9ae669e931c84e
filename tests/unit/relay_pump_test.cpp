// The relay pump: bodies moved from a source socket to a sink socket on the pump's thread while
// the callers wait; a sink that stops reading holds its source back; a task ends with its own
// error when its wait runs out or its sink hangs up; many tasks at once all end. Its loops'
// residents: told of their events and deadlines on the loop's thread, deleted once retired (or
// at the end); work posted from another thread runs on the loop's, in order. A loop whose
// reads find backlogs pauses before each wait; one whose reads find one piece each does not.
#include "llmctl/relay_pump.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <mutex>
#include <optional>
#include <sys/epoll.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <utility>
#include <vector>

using namespace llmctl;
using std::chrono::steady_clock;

namespace {

struct Pair {
    Pair() {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
        ours = Fd(fds[0]);
        theirs = Fd(fds[1]);
    }
    Fd ours, theirs;
};

struct TimedOut : std::runtime_error {
    TimedOut() : std::runtime_error("timed out") {}
};
struct SinkGone : std::runtime_error {
    SinkGone() : std::runtime_error("sink gone") {}
};

// Copies bytes from `source` to `sink` until a '.' arrives; what the sink does not take is held.
class CopyTask final : public PumpTask {
public:
    CopyTask(int source, int sink, std::chrono::milliseconds wait) : source_(source), sink_(sink), wait_(wait) { restart(); }
    int source_fd() const override { return source_; }
    int sink_fd() const override { return sink_; }
    bool read_ready() override {
        char buf[4096];
        ssize_t n = ::recv(source_, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN) return false;
        if (n <= 0) throw std::runtime_error("source closed");
        restart();
        std::string_view got(buf, static_cast<std::size_t>(n));
        const bool end = got.find('.') != std::string_view::npos;
        held_.append(got.substr(0, got.find('.')));
        flush_sink();
        max_held_ = std::max(max_held_, held_.size());
        return end;
    }
    bool sink_pending() const override { return !held_.empty(); }
    void flush_sink() override {
        if (held_.empty()) return;
        ssize_t n = ::send(sink_, held_.data(), held_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) throw SinkGone();
        if (n > 0) held_.erase(0, static_cast<std::size_t>(n));
    }
    steady_clock::time_point deadline() const override { return deadline_; }
    void timed_out() override { throw TimedOut(); }
    void sink_gone() override { throw SinkGone(); }
    std::size_t max_held() const { return max_held_; }

private:
    void restart() { deadline_ = steady_clock::now() + wait_; }
    int source_, sink_;
    std::chrono::milliseconds wait_;
    steady_clock::time_point deadline_;
    std::string held_;
    std::size_t max_held_ = 0;
};

// Writes `n` bytes (a counting pattern) then '.', from its own thread.
std::thread writer(int fd, std::size_t n) {
    return std::thread([fd, n] {
        std::string data(n, 0);
        for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<char>('a' + i % 26);
        data += '.';
        for (std::size_t off = 0; off < data.size();) {
            ssize_t w = ::send(fd, data.data() + off, std::min<std::size_t>(data.size() - off, 1000), MSG_NOSIGNAL);
            if (w <= 0) return;
            off += static_cast<std::size_t>(w);
        }
    });
}

// Reads until `n` bytes came (after waiting `pause` first), from its own thread.
std::thread reader(int fd, std::size_t n, std::string& out, std::chrono::milliseconds pause = {}) {
    return std::thread([fd, n, &out, pause] {
        std::this_thread::sleep_for(pause);
        char buf[65536];
        while (out.size() < n) {
            ssize_t r = ::recv(fd, buf, sizeof buf, 0);
            if (r <= 0) return;
            out.append(buf, static_cast<std::size_t>(r));
        }
    });
}

bool counting(const std::string& s) {
    for (std::size_t i = 0; i < s.size(); ++i)
        if (s[i] != static_cast<char>('a' + i % 26)) return false;
    return true;
}

// `n` bytes through the pump, their reader starting after `pause`: what it got, and the most the
// task held back at once.
struct Transfer {
    std::string got;
    std::size_t max_held = 0;
};
Transfer transfer(RelayPump& pump, std::size_t n, std::chrono::milliseconds pause = {}) {
    Pair source, sink;
    Transfer t;
    auto w = writer(source.theirs.get(), n);
    auto r = reader(sink.theirs.get(), n, t.got, pause);
    CopyTask task(source.ours.get(), sink.ours.get(), std::chrono::seconds(20));
    pump.run(task);
    w.join();
    r.join();
    t.max_held = task.max_held();
    return t;
}

} // namespace

TEST(RelayPump, MovesABodyWholeAndInOrder) {
    RelayPump pump;
    constexpr std::size_t n = 4 << 20;
    Transfer t = transfer(pump, n);
    ASSERT_EQ(t.got.size(), n);
    EXPECT_TRUE(counting(t.got));
}

TEST(RelayPump, ASinkThatDoesNotReadHoldsItsSourceBack) {
    RelayPump pump;
    constexpr std::size_t n = 16 << 20;
    Transfer t = transfer(pump, n, std::chrono::milliseconds(300));
    ASSERT_EQ(t.got.size(), n);
    EXPECT_TRUE(counting(t.got));
    EXPECT_LE(t.max_held, 4096u) << "held more than one read while the sink did not read";
}

TEST(RelayPump, AWaitThatRunsOutEndsTheTaskWithItsError) {
    RelayPump pump;
    Pair source, sink;
    CopyTask task(source.ours.get(), sink.ours.get(), std::chrono::milliseconds(200));
    auto t0 = steady_clock::now();
    EXPECT_THROW(pump.run(task), TimedOut);
    auto took = steady_clock::now() - t0;
    EXPECT_GE(took, std::chrono::milliseconds(200));
    EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(RelayPump, ASinkThatHangsUpEndsTheTask) {
    RelayPump pump;
    Pair source, sink;
    CopyTask task(source.ours.get(), sink.ours.get(), std::chrono::seconds(30));
    std::thread closer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        sink.theirs.reset();
    });
    auto t0 = steady_clock::now();
    EXPECT_THROW(pump.run(task), SinkGone);
    closer.join();
    EXPECT_LT(steady_clock::now() - t0, std::chrono::seconds(5)); // not the 30 s wait
}

TEST(RelayPump, ManyTasksAtOnceAllEnd) {
    RelayPump pump;
    constexpr int k = 64;
    constexpr std::size_t n = 64 << 10;
    std::vector<std::thread> callers;
    std::atomic<int> whole{0};
    for (int i = 0; i < k; ++i) {
        callers.emplace_back([&] {
            Transfer t = transfer(pump, n);
            if (t.got.size() == n && counting(t.got)) ++whole;
        });
    }
    for (auto& t : callers) t.join();
    EXPECT_EQ(whole.load(), k);
}

namespace {

// A resident that sends back what it reads, uppercased, until it reads a '.'; then it retires.
// Its deadline retires it too. What happened is told through `seen`.
struct Seen {
    std::atomic<bool> adopted{false}, timed_out{false}, deleted{false};
    std::atomic<PumpLoop*> loop_at_adoption{nullptr};
};

// Reads what `fd` has and sends it back uppercased: what it sent, or nullopt once `fd` is closed.
std::optional<std::string> echo_uppercased(int fd) {
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) return std::nullopt;
    std::string out(buf, static_cast<std::size_t>(n));
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    [[maybe_unused]] auto w = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    return out;
}

class EchoResident final : public LoopResident {
public:
    EchoResident(int fd, Seen& seen, std::chrono::milliseconds wait) : fd_(fd), seen_(seen), deadline_(steady_clock::now() + wait) {}
    ~EchoResident() override { seen_.deleted = true; }
    void on_adopted() override {
        seen_.loop_at_adoption = PumpLoop::current();
        seen_.adopted = true;
        watch(0, fd_, EPOLLIN);
    }
    void on_ready(int, std::uint32_t) override {
        std::optional<std::string> out = echo_uppercased(fd_);
        if (!out || out->find('.') != std::string::npos) retire();
    }
    steady_clock::time_point deadline() const override { return deadline_; }
    void on_deadline() override {
        seen_.timed_out = true;
        retire();
    }

private:
    int fd_;
    Seen& seen_;
    steady_clock::time_point deadline_;
};

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto end = steady_clock::now() + limit;
    while (!cond()) {
        if (steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

} // namespace

TEST(PumpLoopResidents, AResidentIsToldOfItsEventsOnTheLoopsThreadAndDeletedOnceRetired) {
    RelayPump pump(1);
    Pair p;
    Seen seen;
    PumpLoop& loop = pump.next_loop();
    loop.adopt(std::make_unique<EchoResident>(p.ours.get(), seen, std::chrono::seconds(30)));
    ASSERT_TRUE(wait_until([&] { return seen.adopted.load(); }));
    EXPECT_EQ(seen.loop_at_adoption.load(), &loop);
    EXPECT_EQ(PumpLoop::current(), nullptr); // (this thread is no loop's)
    ASSERT_EQ(::send(p.theirs.get(), "abc", 3, 0), 3);
    std::string got;
    auto r = reader(p.theirs.get(), 3, got);
    r.join();
    EXPECT_EQ(got, "ABC");
    EXPECT_FALSE(seen.deleted.load());
    ASSERT_EQ(::send(p.theirs.get(), "x.", 2, 0), 2);
    EXPECT_TRUE(wait_until([&] { return seen.deleted.load(); }));
    EXPECT_FALSE(seen.timed_out.load());
}

TEST(PumpLoopResidents, AResidentWhoseDeadlinePassesIsToldWithinTheLoopsLook) {
    RelayPump pump(1);
    Pair p;
    Seen seen;
    auto t0 = steady_clock::now();
    pump.next_loop().adopt(std::make_unique<EchoResident>(p.ours.get(), seen, std::chrono::milliseconds(150)));
    ASSERT_TRUE(wait_until([&] { return seen.deleted.load(); }));
    EXPECT_TRUE(seen.timed_out.load());
    EXPECT_GE(steady_clock::now() - t0, std::chrono::milliseconds(150));
}

TEST(PumpLoopResidents, PostedWorkRunsOnTheLoopsThreadInOrder) {
    RelayPump pump(1);
    PumpLoop& loop = pump.next_loop();
    std::mutex mu;
    std::vector<int> order;
    std::atomic<int> on_loop{0};
    for (int i = 0; i < 100; ++i)
        loop.post([&, i] {
            if (PumpLoop::current() == &loop) ++on_loop;
            std::lock_guard<std::mutex> g(mu);
            order.push_back(i);
        });
    ASSERT_TRUE(wait_until([&] {
        std::lock_guard<std::mutex> g(mu);
        return order.size() == 100;
    }));
    EXPECT_EQ(on_loop.load(), 100);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
}

TEST(PumpLoopResidents, ResidentsLeftAtTheEndAreDeleted) {
    Pair p;
    Seen seen;
    {
        RelayPump pump(1);
        pump.next_loop().adopt(std::make_unique<EchoResident>(p.ours.get(), seen, std::chrono::seconds(30)));
        ASSERT_TRUE(wait_until([&] { return seen.adopted.load(); }));
    }
    EXPECT_TRUE(seen.deleted.load());
}

namespace {

// Sends back what it reads, uppercased; an 'm' in it moves it to `other` (once), a '.' retires it.
// Each adoption's loop and the loop of its last event are told through `seen`.
struct MoveSeen {
    std::atomic<int> adoptions{0};
    std::atomic<PumpLoop*> adopted_on{nullptr}, last_event_on{nullptr};
    std::atomic<bool> deleted{false};
};

class MovingResident final : public LoopResident {
public:
    MovingResident(int fd, PumpLoop& other, MoveSeen& seen) : fd_(fd), other_(other), seen_(seen) {}
    ~MovingResident() override { seen_.deleted = true; }
    void on_adopted() override {
        seen_.adopted_on = PumpLoop::current();
        ++seen_.adoptions;
        watch(0, fd_, EPOLLIN);
    }
    void on_ready(int, std::uint32_t) override {
        seen_.last_event_on = PumpLoop::current();
        std::optional<std::string> out = echo_uppercased(fd_);
        if (!out || out->find('.') != std::string::npos) return retire();
        if (out->find('M') != std::string::npos && !std::exchange(moved_, true)) move_to(other_);
    }
    steady_clock::time_point deadline() const override { return steady_clock::time_point::max(); }
    void on_deadline() override {}

private:
    int fd_;
    PumpLoop& other_;
    MoveSeen& seen_;
    bool moved_ = false;
};

} // namespace

TEST(PumpLoopResidents, AResidentThatMovesIsToldOfItsEventsOnTheOtherLoop) {
    RelayPump pump(2);
    PumpLoop& a = pump.next_loop();
    PumpLoop& b = pump.next_loop();
    ASSERT_NE(&a, &b);
    Pair p;
    MoveSeen seen;
    a.adopt(std::make_unique<MovingResident>(p.ours.get(), b, seen));
    ASSERT_TRUE(wait_until([&] { return seen.adoptions.load() == 1; }));
    EXPECT_EQ(seen.adopted_on.load(), &a);
    ASSERT_EQ(::send(p.theirs.get(), "am", 2, 0), 2);
    std::string got;
    reader(p.theirs.get(), 2, got).join();
    EXPECT_EQ(got, "AM");
    ASSERT_TRUE(wait_until([&] { return seen.adoptions.load() == 2; }));
    EXPECT_EQ(seen.adopted_on.load(), &b);
    EXPECT_FALSE(seen.deleted.load()); // (moved, not retired)
    ASSERT_EQ(::send(p.theirs.get(), "bc", 2, 0), 2);
    got.clear();
    reader(p.theirs.get(), 2, got).join();
    EXPECT_EQ(got, "BC");
    EXPECT_EQ(seen.last_event_on.load(), &b);
    ASSERT_EQ(::send(p.theirs.get(), "x.", 2, 0), 2);
    EXPECT_TRUE(wait_until([&] { return seen.deleted.load(); }));
    EXPECT_EQ(seen.adoptions.load(), 2);
}

TEST(RelayPump, StreamsGatherOnTheFirstLoopWhileItIsNotBusy) {
    // (declared before the pump: its resident, deleted with the pump, tells them so)
    Pair p;
    Seen seen;
    RelayPump pump(2);
    PumpLoop& first = pump.next_loop();
    PumpLoop& second = pump.next_loop();
    EXPECT_EQ(&pump.stream_loop(second), &first);
    EXPECT_EQ(&pump.stream_loop(first), &first);
    // A resident keeps the first loop measuring (a loop with nothing to watch counts as idle); a
    // posted piece of work keeps it busy for 400 ms: a stream stays where it is meanwhile, and
    // gathers again once the loop is idle.
    first.adopt(std::make_unique<EchoResident>(p.ours.get(), seen, std::chrono::seconds(30)));
    ASSERT_TRUE(wait_until([&] { return seen.adopted.load(); }));
    first.post([] {
        auto until = steady_clock::now() + std::chrono::milliseconds(400);
        while (steady_clock::now() < until) {}
    });
    ASSERT_TRUE(wait_until([&] { return &pump.stream_loop(second) == &second; }));
    ASSERT_TRUE(wait_until([&] { return &pump.stream_loop(second) == &first; }));
    EXPECT_LT(first.busy_permille(), RelayPump::k_gather_below);
}

TEST(RelayPump, ALoopThatNeverWaitsHasFallenBehindAndRecovers) {
    std::atomic<int> rounds{10};
    std::function<void()> spin; // (declared before the pump, as the resident's fd and Seen: they outlive the loop)
    Pair p;
    Seen seen;
    RelayPump pump(2);
    PumpLoop& first = pump.next_loop();
    first.adopt(std::make_unique<EchoResident>(p.ours.get(), seen, std::chrono::seconds(30)));
    ASSERT_TRUE(wait_until([&] { return seen.adopted.load(); }));
    EXPECT_FALSE(RelayPump::falls_behind(first));
    // Work posted back to back, 120 ms a round for 10 rounds: the loop never waits meanwhile.
    spin = [&] {
        auto until = steady_clock::now() + std::chrono::milliseconds(120);
        while (steady_clock::now() < until) {}
        if (--rounds > 0) first.post(spin);
    };
    first.post(spin);
    ASSERT_TRUE(wait_until([&] { return RelayPump::falls_behind(first); }));
    ASSERT_TRUE(wait_until([&] { return rounds.load() == 0 && !RelayPump::falls_behind(first); }));
}

namespace {

// Reads its source `per_read` bytes at a time until `total` came, telling the loop each read
// found a backlog (or not): every read is a round of its own (the source stays readable).
class SlicedTask final : public PumpTask {
public:
    SlicedTask(int source, int sink, std::size_t per_read, std::size_t total, bool backlogged)
        : source_(source), sink_(sink), per_read_(per_read), left_(total), backlogged_(backlogged) {}
    int source_fd() const override { return source_; }
    int sink_fd() const override { return sink_; }
    bool read_ready() override {
        char buf[64];
        ssize_t n = ::recv(source_, buf, std::min(per_read_, sizeof buf), MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN) return false;
        if (n <= 0) throw std::runtime_error("source closed");
        ++reads_;
        PumpLoop::note_read(backlogged_);
        left_ -= std::min(left_, static_cast<std::size_t>(n));
        return left_ == 0;
    }
    bool sink_pending() const override { return false; }
    void flush_sink() override {}
    steady_clock::time_point deadline() const override { return steady_clock::now() + std::chrono::seconds(20); }
    void timed_out() override { throw TimedOut(); }
    void sink_gone() override { throw SinkGone(); }
    int reads() const { return reads_; }

private:
    int source_, sink_;
    std::size_t per_read_, left_;
    bool backlogged_;
    int reads_ = 0;
};

} // namespace

namespace {

// n events, each ended by a blank line in `eol`s.
std::string events(int n, const char* eol = "\n") {
    std::string s;
    for (int i = 0; i < n; ++i) s += fmt::format("data: {{\"a\":{}}}{}{}", i, eol, eol);
    return s;
}

} // namespace

TEST(RelayPump, AStreamReadWithTwoOrMoreEventsFoundABacklog) {
    static_assert(k_backlog_events == 2);
    EXPECT_FALSE(note_stream_read(""));
    EXPECT_FALSE(note_stream_read(events(1)));
    EXPECT_TRUE(note_stream_read(events(2)));
    EXPECT_TRUE(note_stream_read(events(3, "\r\n")));           // CRLF lines
    EXPECT_FALSE(note_stream_read(events(1) + "data: {\"a\"")); // one and a part
    EXPECT_FALSE(note_stream_read(events(1) + "\n"));           // one, an extra blank line
    // A server that writes an event in pieces, or a short comment first: no read holds two.
    EXPECT_FALSE(note_stream_read(": ping\n\n"));
    EXPECT_FALSE(note_stream_read("data: "));
    EXPECT_FALSE(note_stream_read("{\"choices\":[{\"delta\":{\"content\":\"hello\"}}]}"));
    EXPECT_FALSE(note_stream_read("\n\n"));
    EXPECT_FALSE(note_stream_read("{\"object\":\"chat.completion\"}")); // not an event stream
}

namespace {

// `reads` reads of 10 bytes on a loop of its own, each telling the loop it found a backlog or
// not: how long they took and how many gathering pauses the loop made.
struct Sliced {
    int reads = 0;
    std::uint64_t pauses = 0;
    steady_clock::duration took{};
};
Sliced sliced_reads(int reads, bool backlogged) {
    RelayPump pump(1);
    Pair source, sink;
    const std::string data(static_cast<std::size_t>(reads) * 10, 'x'); // all there from the start
    if (::send(source.theirs.get(), data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) throw std::runtime_error("send");
    SlicedTask task(source.ours.get(), sink.ours.get(), 10, data.size(), backlogged);
    const auto began = steady_clock::now();
    pump.run(task);
    Sliced r;
    r.took = steady_clock::now() - began;
    r.reads = task.reads();
    r.pauses = pump.next_loop().gathering_pauses();
    return r;
}

} // namespace

TEST(RelayPump, ALoopWhoseReadsFindBacklogsPausesBeforeEachWait) {
    const Sliced r = sliced_reads(40, true);
    EXPECT_EQ(r.reads, 40);
    EXPECT_GE(r.pauses, 39u); // one between each round and the next
    EXPECT_GE(r.took, 39 * PumpLoop::k_gather_pause);
}

TEST(RelayPump, ALoopWhoseReadsFindOnePieceEachDoesNotPause) {
    const Sliced r = sliced_reads(400, false);
    EXPECT_EQ(r.reads, 400);
    EXPECT_EQ(r.pauses, 0u);
}
