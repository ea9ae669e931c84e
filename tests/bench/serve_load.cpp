// The load generator of the gateway benchmark (docs/BENCHMARKS.md, section serve): one thread,
// epoll, raw non-blocking sockets, HTTP/1.1 with keep-alive. The same program drives the mock
// server directly, nginx in front of it and `llmctl serve` in front of it.
//
//   llmctl-bench-load MODE --target HOST:PORT --body JSON [--path P] [-c N] [-d SECONDS] [-n N]
//
// Modes (each prints one JSON object on stdout):
//   stream  N connections, each sending streaming requests one after another for d seconds:
//           SSE `data:` lines (tokens) per second; with tokens stamped by the mock
//           (--stamp-tokens: the content is its CLOCK_MONOTONIC send time) the latency of each
//           token, arrival - send.
//   ttfb    N clients, each sending n requests one after another (keep-alive): time from the
//           request's last byte written to the answer's first byte read. --rate R: each client
//           sends a request every 1/R seconds (open loop, the clients' schedules spread evenly
//           over the period) and the time counts from when the request was due, so an answer
//           that holds up the next request is charged for the wait (no coordinated omission);
//           without it each sends the next as soon as the answer is complete (closed loop).
//   rps     N connections, each sending requests one after another for d seconds: completed
//           requests per second (any body; non-2xx answers count as errors).
//   hold    N streaming requests held open for d seconds (or until SIGTERM/SIGINT); prints
//           "ready" on stderr once every request was sent (--ready-on head: once every answer's
//           head came). --serial: one connection after another, each once the previous
//           answer's head came (N streams open without N requests arriving at once).
// A token's arrival time is the time of the read that brought it: the generator reads as soon as
// epoll reports data, and it reports its own CPU time (cpu_s) to show it was not the bottleneck.

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

volatile std::sig_atomic_t g_stop = 0;

std::int64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

double cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "llmctl-bench-load: %s\n", what.c_str());
    std::exit(2);
}

enum class Mode { stream, ttfb, rps, hold };

struct Options {
    Mode mode = Mode::stream;
    std::string host = "127.0.0.1";
    int port = 0;
    std::string path = "/v1/chat/completions";
    std::string body;
    int conns = 1;
    double seconds = 5;
    int requests = 10; // ttfb: per client
    double rate = 0;   // ttfb: requests per second per client (0: closed loop)
    bool ready_on_head = false;
    bool serial = false; // hold: the next connection once the previous answer's head came
};

// Samples in nanoseconds; percentiles by nearest rank.
struct Samples {
    std::vector<std::uint32_t> v;
    void add(std::int64_t ns) { v.push_back(static_cast<std::uint32_t>(std::clamp<std::int64_t>(ns, 0, UINT32_MAX))); }
    double pct_ms(double p) {
        if (v.empty()) return -1;
        std::size_t k = static_cast<std::size_t>(std::max(0.0, std::min<double>(v.size() - 1, p / 100.0 * v.size() + 0.5 - 1)));
        std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
        return v[k] / 1e6;
    }
    std::string json() {
        if (v.empty()) return "null";
        char buf[256];
        double p50 = pct_ms(50), p90 = pct_ms(90), p99 = pct_ms(99), p999 = pct_ms(99.9), mx = pct_ms(100);
        std::snprintf(buf, sizeof buf, "{\"n\": %zu, \"p50\": %.4f, \"p90\": %.4f, \"p99\": %.4f, \"p999\": %.4f, \"max\": %.4f}", v.size(),
                      p50, p90, p99, p999, mx);
        return buf;
    }
};

struct Stats {
    std::uint64_t tokens = 0;   // `data:` lines other than [DONE], inside the window
    std::uint64_t requests = 0; // answers complete, inside the window
    std::uint64_t errors = 0;   // non-2xx answers, failed connections
    std::uint64_t heads = 0;    // answers whose head came
    std::uint64_t sent = 0;     // requests written
    Samples token_latency, ttfb, request_time;
    Samples send_lag; // ttfb --rate: request written - due (the generator late, or the previous answer; in ttfb)
    std::string first_error;
};

// One connection: the request out, the answer in (head, then a chunked or sized body), SSE lines.
struct Conn {
    int fd = -1;
    bool connecting = false;
    std::size_t out_off = 0;
    bool want_request = true; // the next request is to be written
    int done_requests = 0;    // ttfb: per client
    // the answer
    enum Phase { idle, head, chunk_size, chunk_data, chunk_crlf, trailer, sized, until_close } phase = idle;
    std::string head_buf, line, size_line;
    std::uint64_t left = 0;
    int status = 0;
    bool keep_alive = true;
    bool first_byte = false;
    std::int64_t sent_at = 0;
    std::int64_t due = 0; // ttfb --rate: when the next request is due
};

class Load {
public:
    explicit Load(const Options& o) : o_(o) {
        request_ = "POST " + o.path + " HTTP/1.1\r\nHost: " + o.host + ":" + std::to_string(o.port) +
                   "\r\nContent-Type: application/json\r\nAccept: */*\r\nContent-Length: " + std::to_string(o.body.size()) + "\r\n\r\n" +
                   o.body;
        ep_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) die("epoll_create1");
        addr_.sin_family = AF_INET;
        addr_.sin_port = htons(static_cast<std::uint16_t>(o.port));
        if (::inet_pton(AF_INET, o.host.c_str(), &addr_.sin_addr) != 1) die("--target: an IPv4 address:port");
    }

    int run() {
        conns_.resize(static_cast<std::size_t>(o_.conns));
        start_ = now_ns();
        end_ = o_.mode == Mode::ttfb ? INT64_MAX : start_ + static_cast<std::int64_t>(o_.seconds * 1e9);
        double cpu0 = cpu_seconds();
        for (std::size_t i = 0; i < (o_.serial ? 1 : conns_.size()); ++i) open_conn(i);
        if (paced()) {
            for (std::size_t i = 0; i < conns_.size(); ++i) conns_[i].due = start_ + period() * static_cast<std::int64_t>(i) / o_.conns;
        }
        opened_ = o_.serial ? 1 : conns_.size();
        std::vector<epoll_event> evs(1024);
        bool ready_said = false;
        while (!g_stop) {
            std::int64_t now = now_ns();
            if (now >= end_) break;
            if (o_.mode == Mode::ttfb && finished_ == conns_.size()) break;
            if (o_.mode == Mode::hold && !ready_said && (o_.ready_on_head ? st_.heads : st_.sent) >= conns_.size()) {
                std::fprintf(stderr, "ready\n");
                ready_said = true;
            }
            std::int64_t wait_ns = std::min<std::int64_t>(100'000'000, end_ - now + 1'000'000);
            if (paced()) wait_ns = std::min(wait_ns, send_due(now));
            const timespec wait{static_cast<time_t>(wait_ns / 1'000'000'000), static_cast<long>(wait_ns % 1'000'000'000)};
            int n = ::epoll_pwait2(ep_, evs.data(), static_cast<int>(evs.size()), &wait, nullptr);
            if (n < 0 && errno != EINTR) die("epoll_wait");
            for (int i = 0; i < n; ++i) on_event(evs[static_cast<std::size_t>(i)].data.u64, evs[static_cast<std::size_t>(i)].events);
        }
        std::int64_t stop = std::min(now_ns(), end_);
        double wall = (stop - start_) / 1e9;
        double cpu = cpu_seconds() - cpu0;
        std::printf("{\"mode\": \"%s\", \"conns\": %d, \"seconds\": %.3f, \"tokens\": %llu, \"tokens_per_s\": %.1f, \"requests\": %llu, "
                    "\"requests_per_s\": %.1f, \"errors\": %llu, \"heads\": %llu, \"sent\": %llu, \"cpu_s\": %.3f, ",
                    mode_name(), o_.conns, wall, static_cast<unsigned long long>(st_.tokens), st_.tokens / wall,
                    static_cast<unsigned long long>(st_.requests), st_.requests / wall, static_cast<unsigned long long>(st_.errors),
                    static_cast<unsigned long long>(st_.heads), static_cast<unsigned long long>(st_.sent), cpu);
        std::printf("\"token_latency_ms\": %s, \"ttfb_ms\": %s, \"request_ms\": %s, \"send_lag_ms\": %s, \"first_error\": \"%s\"}\n",
                    st_.token_latency.json().c_str(), st_.ttfb.json().c_str(), st_.request_time.json().c_str(), st_.send_lag.json().c_str(),
                    st_.first_error.c_str());
        return 0;
    }

private:
    const char* mode_name() const {
        switch (o_.mode) {
        case Mode::stream: return "stream";
        case Mode::ttfb: return "ttfb";
        case Mode::rps: return "rps";
        case Mode::hold: return "hold";
        }
        return "?";
    }

    bool paced() const { return o_.mode == Mode::ttfb && o_.rate > 0; }
    std::int64_t period() const { return static_cast<std::int64_t>(1e9 / o_.rate); }
    bool due(const Conn& c, std::int64_t now) const { return !paced() || now >= c.due; }

    // Writes the requests that fell due on connections waiting for their turn; the time until the
    // next one is due.
    std::int64_t send_due(std::int64_t now) {
        std::int64_t next = INT64_MAX;
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            Conn& c = conns_[i];
            if (c.fd < 0 || c.connecting || !c.want_request || c.out_off > 0) continue;
            if (now >= c.due) {
                write_request(i);
                if (conns_[i].want_request) watch_out(i, true);
            } else {
                next = std::min(next, c.due - now);
            }
        }
        return next;
    }

    void error(const std::string& what) {
        ++st_.errors;
        if (st_.first_error.empty()) {
            for (char ch : what) st_.first_error += (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20) ? ' ' : ch;
        }
    }

    void open_conn(std::size_t i) {
        Conn& c = conns_[i];
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) die(std::string("socket: ") + std::strerror(errno) + " (raise the open file limit)");
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_);
        if (rc != 0 && errno != EINPROGRESS) die(std::string("connect: ") + std::strerror(errno));
        c = Conn{};
        c.fd = fd;
        c.connecting = rc != 0;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
        ev.data.u64 = i;
        if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
    }

    void close_conn(std::size_t i, bool reopen) {
        Conn& c = conns_[i];
        if (c.fd >= 0) {
            ::epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
            ::close(c.fd);
            c.fd = -1;
        }
        if (reopen && !g_stop && now_ns() < end_) open_conn(i);
    }

    void watch_out(std::size_t i, bool out) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0u);
        ev.data.u64 = i;
        ::epoll_ctl(ep_, EPOLL_CTL_MOD, conns_[i].fd, &ev);
    }

    void on_event(std::size_t i, std::uint32_t events) {
        Conn& c = conns_[i];
        if (c.fd < 0) return;
        if (c.connecting) {
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                error(std::string("connect: ") + std::strerror(err));
                close_conn(i, false);
                if (o_.mode == Mode::ttfb) ++finished_;
                return;
            }
            c.connecting = false;
        }
        if ((events & EPOLLOUT) && c.want_request) {
            if (due(c, now_ns()) || c.out_off > 0)
                write_request(i);
            else
                watch_out(i, false); // send_due writes it when it is due
        }
        if (conns_[i].fd >= 0 && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) read_answer(i);
    }

    void write_request(std::size_t i) {
        Conn& c = conns_[i];
        while (c.out_off < request_.size()) {
            ssize_t n = ::send(c.fd, request_.data() + c.out_off, request_.size() - c.out_off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN) return;
                error(std::string("send: ") + std::strerror(errno));
                close_conn(i, true);
                return;
            }
            c.out_off += static_cast<std::size_t>(n);
        }
        c.want_request = false;
        c.out_off = 0;
        c.phase = Conn::head;
        c.head_buf.clear();
        c.line.clear();
        c.first_byte = false;
        const std::int64_t written = now_ns();
        if (paced()) st_.send_lag.add(written - c.due);
        c.sent_at = paced() ? c.due : written;
        c.due += paced() ? period() : 0;
        ++st_.sent;
        watch_out(i, false);
    }

    void read_answer(std::size_t i) {
        for (;;) {
            Conn& c = conns_[i];
            ssize_t n = ::recv(c.fd, buf_, sizeof buf_, 0);
            std::int64_t now = now_ns();
            if (n > 0) {
                if (!c.first_byte && c.phase != Conn::idle) {
                    c.first_byte = true;
                    if (now < end_) st_.ttfb.add(now - c.sent_at);
                }
                if (!feed(i, std::string_view(buf_, static_cast<std::size_t>(n)), now)) return;
                if (static_cast<std::size_t>(n) < sizeof buf_) return;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            if (c.phase == Conn::until_close) {
                complete(i, now, false);
                return;
            }
            if (c.phase != Conn::idle || n < 0)
                error(n < 0 ? std::string("recv: ") + std::strerror(errno) : "the server closed the connection");
            close_conn(i, o_.mode != Mode::hold && o_.mode != Mode::ttfb);
            if (o_.mode == Mode::ttfb) ++finished_;
            return;
        }
    }

    // Moves the bytes of `d` up to a newline into c.size_line (the newline consumed); false when
    // `d` ended first (all of it taken: the line goes on in the next read).
    static bool take_line(Conn& c, std::string_view& d) {
        auto nl = d.find('\n');
        c.size_line.append(d.substr(0, nl));
        d.remove_prefix(nl == std::string_view::npos ? d.size() : nl + 1);
        return nl != std::string_view::npos;
    }

    // Consumes bytes of the answer; false when the connection was closed or replaced.
    bool feed(std::size_t i, std::string_view d, std::int64_t now) {
        while (!d.empty()) {
            Conn& c = conns_[i];
            switch (c.phase) {
            case Conn::idle: error("bytes after the answer"); return false;
            case Conn::head: {
                std::size_t had = c.head_buf.size();
                c.head_buf.append(d);
                auto end = c.head_buf.find("\r\n\r\n", had >= 3 ? had - 3 : 0);
                if (end == std::string::npos) {
                    if (c.head_buf.size() > 65536) {
                        error("head too large");
                        close_conn(i, true);
                        return false;
                    }
                    return true;
                }
                std::size_t used = end + 4 - had;
                parse_head(c, std::string_view(c.head_buf).substr(0, end + 2));
                ++st_.heads;
                if (o_.serial && opened_ < conns_.size()) open_conn(opened_++);
                d.remove_prefix(used);
                break;
            }
            case Conn::chunk_size: {
                if (!take_line(c, d)) return true;
                c.left = std::strtoull(c.size_line.c_str(), nullptr, 16);
                c.size_line.clear();
                c.phase = c.left == 0 ? Conn::trailer : Conn::chunk_data;
                break;
            }
            case Conn::chunk_data: {
                std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(c.left, d.size()));
                body(c, d.substr(0, take), now);
                d.remove_prefix(take);
                c.left -= take;
                if (c.left == 0) {
                    c.phase = Conn::chunk_crlf;
                    c.left = 2;
                }
                break;
            }
            case Conn::chunk_crlf: {
                std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(c.left, d.size()));
                d.remove_prefix(take);
                c.left -= take;
                if (c.left == 0) c.phase = Conn::chunk_size;
                break;
            }
            case Conn::trailer: {
                // After the last chunk: trailer lines, then an empty line ("\r\n").
                if (!take_line(c, d)) return true;
                bool empty = c.size_line.empty() || c.size_line == "\r";
                c.size_line.clear();
                if (empty) {
                    if (!d.empty()) error("bytes after the answer");
                    return complete(i, now, c.keep_alive);
                }
                break;
            }
            case Conn::sized: {
                std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(c.left, d.size()));
                body(c, d.substr(0, take), now);
                d.remove_prefix(take);
                c.left -= take;
                if (c.left == 0) {
                    if (!d.empty()) error("bytes after the answer");
                    return complete(i, now, c.keep_alive);
                }
                break;
            }
            case Conn::until_close: body(c, d, now); return true;
            }
        }
        return true;
    }

    void parse_head(Conn& c, std::string_view h) {
        c.status = 0;
        if (h.size() > 12 && h.substr(0, 5) == "HTTP/") c.status = std::atoi(std::string(h.substr(9, 3)).c_str());
        bool chunked = false;
        long long length = -1;
        c.keep_alive = h.substr(0, 8) == "HTTP/1.1";
        std::size_t pos = h.find("\r\n");
        while (pos != std::string_view::npos && pos + 2 < h.size()) {
            std::size_t next = h.find("\r\n", pos + 2);
            std::string_view line = h.substr(pos + 2, next - pos - 2);
            auto colon = line.find(':');
            if (colon != std::string_view::npos) {
                std::string name(line.substr(0, colon));
                for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                std::string_view value = line.substr(colon + 1);
                while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
                std::string v(value);
                for (auto& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                if (name == "transfer-encoding" && v.find("chunked") != std::string::npos) chunked = true;
                if (name == "content-length") length = std::atoll(v.c_str());
                if (name == "connection" && v.find("close") != std::string::npos) c.keep_alive = false;
                if (name == "connection" && v.find("keep-alive") != std::string::npos) c.keep_alive = true;
            }
            pos = next;
        }
        if (c.status < 200 || c.status > 299) error("HTTP status " + std::to_string(c.status));
        if (chunked) {
            c.phase = Conn::chunk_size;
        } else if (length >= 0) {
            c.phase = Conn::sized;
            c.left = static_cast<std::uint64_t>(length);
        } else {
            c.phase = Conn::until_close;
            c.keep_alive = false;
        }
    }

    // The body: complete SSE lines; a `data:` line other than [DONE] is a token.
    void body(Conn& c, std::string_view d, std::int64_t now) {
        while (!d.empty()) {
            auto nl = d.find('\n');
            if (nl == std::string_view::npos) {
                c.line.append(d);
                return;
            }
            if (c.line.empty()) {
                sse_line(d.substr(0, nl), now);
            } else {
                c.line.append(d.substr(0, nl));
                sse_line(c.line, now);
                c.line.clear();
            }
            d.remove_prefix(nl + 1);
        }
    }

    void sse_line(std::string_view l, std::int64_t now) {
        if (l.substr(0, 5) != "data:" || now >= end_) return;
        if (l.find("[DONE]") != std::string_view::npos) return;
        ++st_.tokens;
        // A stamped token: "content":"<ns> "
        static constexpr std::string_view key = "\"content\":\"";
        auto k = l.find(key);
        if (k == std::string_view::npos) return;
        std::size_t p = k + key.size();
        if (p >= l.size() || l[p] < '0' || l[p] > '9') return;
        std::int64_t stamp = 0;
        while (p < l.size() && l[p] >= '0' && l[p] <= '9') stamp = stamp * 10 + (l[p++] - '0');
        st_.token_latency.add(now - stamp);
    }

    // The answer is complete: the next request on this connection (or a new one).
    bool complete(std::size_t i, std::int64_t now, bool keep_alive) {
        Conn& c = conns_[i];
        if (now < end_) {
            ++st_.requests;
            st_.request_time.add(now - c.sent_at);
        }
        c.phase = Conn::idle;
        c.want_request = true;
        if (o_.mode == Mode::ttfb && ++c.done_requests >= o_.requests) {
            ++finished_;
            close_conn(i, false);
            return false;
        }
        if (o_.mode == Mode::hold) {
            close_conn(i, false);
            return false;
        }
        if (!keep_alive) {
            close_conn(i, true);
            return false;
        }
        if (!due(c, now)) return true; // send_due writes it when it is due
        write_request(i);
        if (conns_[i].want_request) watch_out(i, true);
        return true;
    }

    Options o_;
    std::string request_;
    int ep_ = -1;
    sockaddr_in addr_{};
    std::vector<Conn> conns_;
    std::size_t finished_ = 0;
    std::size_t opened_ = 0;
    std::int64_t start_ = 0, end_ = 0;
    Stats st_;
    char buf_[64 * 1024];
};

void raise_open_file_limit() {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &r);
    }
}

Options parse(int argc, char** argv) {
    Options o;
    if (argc < 2) die("usage: llmctl-bench-load stream|ttfb|rps|hold --target HOST:PORT --body JSON [--path P] [-c N] [-d S] [-n N]");
    std::string mode = argv[1];
    if (mode == "stream")
        o.mode = Mode::stream;
    else if (mode == "ttfb")
        o.mode = Mode::ttfb;
    else if (mode == "rps")
        o.mode = Mode::rps;
    else if (mode == "hold")
        o.mode = Mode::hold;
    else
        die("unknown mode " + mode);
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--target") {
            std::string t = value();
            auto colon = t.rfind(':');
            if (colon == std::string::npos) die("--target HOST:PORT");
            o.host = t.substr(0, colon);
            o.port = std::atoi(t.c_str() + colon + 1);
        } else if (a == "--path") {
            o.path = value();
        } else if (a == "--body") {
            o.body = value();
        } else if (a == "-c") {
            o.conns = std::atoi(value().c_str());
        } else if (a == "-d") {
            o.seconds = std::atof(value().c_str());
        } else if (a == "-n") {
            o.requests = std::atoi(value().c_str());
        } else if (a == "--rate") {
            o.rate = std::atof(value().c_str());
        } else if (a == "--serial") {
            o.serial = true;
        } else if (a == "--ready-on") {
            o.ready_on_head = value() == "head";
        } else {
            die("unknown option " + a);
        }
    }
    if (o.port <= 0 || o.conns <= 0) die("--target HOST:PORT and -c N > 0 are required");
    return o;
}

} // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    raise_open_file_limit();
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_stop = 1; };
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    Load load(o);
    return load.run();
}
