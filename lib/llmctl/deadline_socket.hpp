#pragma once
// Blocking socket I/O under deadlines (poll(2)), one descriptor and no event loop: what a thread
// that waits (chat, a gateway request that queues or starts its model) reads and writes with.

#include "llmctl/fd.hpp"
#include "llmctl/units.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <functional>
#include <string_view>
#include <sys/uio.h>

namespace llmctl {

// A connected socket as Beast's synchronous streams want it, each call bounded by a deadline
// (poll(2)); a `cancelled` check ends any wait within 100 ms (Error operation_aborted).
class DeadlineSocket {
public:
    explicit DeadlineSocket(Fd fd) : fd_(std::move(fd)) {}
    DeadlineSocket(DeadlineSocket&&) = default;
    void expires_after(Millis d) { deadline_ = std::chrono::steady_clock::now() + d; }
    // Polled every 100 ms while a call waits (it must outlive the wait); nullptr: none.
    void cancel_when(const std::function<bool()>* cancelled) { cancelled_ = cancelled; }

    template <class Buffers>
    std::size_t read_some(const Buffers& buffers, boost::beast::error_code& ec) {
        auto b = *boost::asio::buffer_sequence_begin(buffers);
        return read_into(b.data(), b.size(), ec);
    }
    template <class Buffers>
    std::size_t read_some(const Buffers& buffers) {
        boost::beast::error_code ec;
        auto n = read_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }
    template <class Buffers>
    std::size_t write_some(const Buffers& buffers, boost::beast::error_code& ec) {
        iovec v[k_max_pieces];
        int n = 0;
        for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers) && n < k_max_pieces;
             ++it) {
            boost::asio::const_buffer b = *it;
            if (b.size() == 0) continue;
            v[n++] = iovec{const_cast<void*>(b.data()), b.size()};
        }
        return write_from(v, n, ec);
    }
    template <class Buffers>
    std::size_t write_some(const Buffers& buffers) {
        boost::beast::error_code ec;
        auto n = write_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }

    // One write of what the socket takes now, without waiting: the bytes written (0 when it
    // would block, or with `ec` set on an error).
    std::size_t write_now(std::string_view data, boost::beast::error_code& ec);

    // Waits for `events` (POLLIN, POLLOUT) until the deadline; false with `ec` set when it passed
    // or the wait was cancelled.
    bool ready(short events, boost::beast::error_code& ec);

    int fd() const { return fd_.get(); }
    Fd release_fd() { return std::move(fd_); }
    void close();

private:
    std::size_t read_into(void* data, std::size_t size, boost::beast::error_code& ec);
    static constexpr int k_max_pieces = 16; // a head and a body, or a chunk's size, data and end: one sendmsg
    std::size_t write_from(const iovec* v, int n, boost::beast::error_code& ec);

    Fd fd_;
    const std::function<bool()>* cancelled_ = nullptr;
    std::chrono::steady_clock::time_point next_cancel_look_{};
    std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
};

} // namespace llmctl
