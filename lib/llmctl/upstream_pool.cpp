#include "llmctl/upstream_pool.hpp"

#include <chrono>
#include <deque>
#include <iterator>
#include <map>
#include <mutex>
#include <poll.h>
#include <utility>

namespace llmctl {

namespace {

using clock = std::chrono::steady_clock;

constexpr std::size_t k_per_address = 256;
constexpr auto k_idle_for = std::chrono::seconds(15);

struct Kept {
    Fd fd;
    clock::time_point since;
};

// Closes the connections of `q` idle for too long (the oldest are first).
void drop_idle(std::deque<Kept>& q) {
    while (!q.empty() && clock::now() - q.front().since > k_idle_for) q.pop_front(); // (closes it)
}

struct Pool {
    std::mutex mu;
    std::map<std::pair<std::string, int>, std::deque<Kept>> by_address;
    std::map<std::pair<std::string, int>, int> kept_by_callers;
    clock::time_point last_sweep = clock::now();

    // Closes the connections idle for too long, of every address (a server that stopped, or
    // moved to another port, is never asked again: its connections would stay open). Under mu.
    void sweep(bool now = false) {
        if (!now && clock::now() - last_sweep < std::chrono::seconds(1)) return;
        last_sweep = clock::now();
        for (auto it = by_address.begin(); it != by_address.end();) {
            auto& q = it->second;
            drop_idle(q);
            it = q.empty() ? by_address.erase(it) : std::next(it);
        }
    }
};

// Never destroyed: a connection thread may still keep one while the process exits.
Pool& pool() {
    static Pool* p = new Pool;
    return *p;
}

// Open as far as a look can tell: no answer bytes left over, no close or reset from the server.
bool looks_open(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
}

} // namespace

Fd take_kept_connection(const std::string& host, int port) {
    Pool& p = pool();
    for (;;) {
        Kept k;
        {
            std::lock_guard<std::mutex> g(p.mu);
            auto it = p.by_address.find({host, port});
            if (it == p.by_address.end() || it->second.empty()) return Fd();
            auto& q = it->second;
            drop_idle(q);
            if (q.empty()) return Fd();
            k = std::move(q.back()); // the most recent: the least likely to have been closed by the server
            q.pop_back();
        }
        if (looks_open(k.fd.get())) return std::move(k.fd);
    }
}

void keep_connection(const std::string& host, int port, Fd fd) {
    if (!fd.valid()) return;
    Pool& p = pool();
    std::lock_guard<std::mutex> g(p.mu);
    p.sweep();
    auto& q = p.by_address[{host, port}];
    if (q.size() >= k_per_address) return; // closed
    q.push_back(Kept{std::move(fd), clock::now()});
}

bool claim_kept_connection(const std::string& host, int port, int cap) {
    Pool& p = pool();
    std::lock_guard<std::mutex> g(p.mu);
    int& n = p.kept_by_callers[{host, port}];
    if (n >= cap) return false;
    ++n;
    return true;
}

void release_kept_connection(const std::string& host, int port) {
    Pool& p = pool();
    std::lock_guard<std::mutex> g(p.mu);
    auto it = p.kept_by_callers.find({host, port});
    if (it != p.kept_by_callers.end() && --it->second <= 0) p.kept_by_callers.erase(it);
}

void close_idle_connections() {
    Pool& p = pool();
    std::lock_guard<std::mutex> g(p.mu);
    p.sweep(true);
}

} // namespace llmctl
