// The relay pump: bodies moved from a source socket to a sink socket on the pump's thread while
// the callers wait; a sink that stops reading holds its source back; a task ends with its own
// error when its wait runs out or its sink hangs up; many tasks at once all end.
#include "llmctl/relay_pump.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <gtest/gtest.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
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
