#include "llmctl/deadline_socket.hpp"

#include <boost/asio/error.hpp>
#include <cerrno>
#include <poll.h>
#include <sys/socket.h>

namespace llmctl {

namespace asio = boost::asio;
namespace beast = boost::beast;

bool DeadlineSocket::ready(short events, beast::error_code& ec) {
    for (;;) {
        const auto now = std::chrono::steady_clock::now();
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now);
        if (left.count() <= 0) {
            ec = beast::error::timeout;
            return false;
        }
        // Looked at every 100 ms, not before every wait: a relay waits once per token, and the
        // look is a system call of its own.
        if (cancelled_ && now >= next_cancel_look_) {
            next_cancel_look_ = now + std::chrono::milliseconds(100);
            if ((*cancelled_)()) {
                ec = asio::error::operation_aborted;
                return false;
            }
        }
        const std::int64_t step = cancelled_ ? 100 : 3'600'000;
        int wait = static_cast<int>(std::min<std::int64_t>(left.count(), step));
        pollfd p{fd_.get(), events, 0};
        int n = ::poll(&p, 1, wait);
        if (n > 0) return true; // readable, writable, or an error/hangup the next call reports
        if (n < 0 && errno != EINTR) {
            ec = beast::error_code(errno, beast::system_category());
            return false;
        }
    }
}

// Both try the call first and wait with poll(2) only when it would block: a relay's writes
// mostly go straight into the socket buffer.
std::size_t DeadlineSocket::read_into(void* data, std::size_t size, beast::error_code& ec) {
    ec = {};
    if (size == 0) return 0;
    for (bool first = true;; first = false) {
        if (!first && !ready(POLLIN, ec)) return 0;
        ssize_t n = ::recv(fd_.get(), data, size, MSG_DONTWAIT);
        if (n > 0) return static_cast<std::size_t>(n);
        if (n == 0) {
            ec = asio::error::eof;
            return 0;
        }
        if (errno == EAGAIN || errno == EINTR) continue;
        ec = beast::error_code(errno, beast::system_category());
        return 0;
    }
}

std::size_t DeadlineSocket::write_from(const iovec* v, int count, beast::error_code& ec) {
    ec = {};
    if (count == 0) return 0;
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(v);
    m.msg_iovlen = static_cast<std::size_t>(count);
    for (bool first = true;; first = false) {
        if (!first && !ready(POLLOUT, ec)) return 0;
        ssize_t n = ::sendmsg(fd_.get(), &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EAGAIN || errno == EINTR) continue;
        ec = beast::error_code(errno, beast::system_category());
        return 0;
    }
}

std::size_t DeadlineSocket::write_now(std::string_view data, beast::error_code& ec) {
    ec = {};
    for (;;) {
        ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) ec = beast::error_code(errno, beast::system_category());
        return 0;
    }
}

void DeadlineSocket::close() {
    if (fd_.valid()) ::shutdown(fd_.get(), SHUT_RDWR);
    fd_.reset();
}

} // namespace llmctl
