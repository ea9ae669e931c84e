#include "log.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace mock {
namespace {

int g_log_fd = 1;

constexpr std::size_t k_spam_line_bytes = 64;
constexpr std::size_t k_spam_chunk_lines = 1024; // 64 KiB per write(2)

// Formats the fixed-width header of one spam line in place; faster than snprintf at GiB scale.
void format_spam_line(char* line, std::uint64_t number) {
    std::memcpy(line, "spam ", 5);
    for (int i = 16; i >= 5; --i) {
        line[i] = static_cast<char>('0' + number % 10);
        number /= 10;
    }
    line[17] = ' ';
    line[k_spam_line_bytes - 1] = '\n';
}

} // namespace

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

void set_log_fd(int fd) { g_log_fd = fd; }

int log_fd() { return g_log_fd; }

void log_line(std::string_view line) {
    std::string buffer;
    buffer.reserve(line.size() + 1);
    buffer.append(line).push_back('\n');
    write_all(g_log_fd, buffer);
}

void err_line(std::string_view line) {
    std::string buffer(line);
    buffer.push_back('\n');
    write_all(2, buffer);
}

void try_write_line(int fd, std::string_view line) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT)) {
        std::string buffer(line);
        buffer.push_back('\n');
        (void)::write(fd, buffer.data(), buffer.size());
    }
}

std::int64_t realtime_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void write_log_spam(std::uint64_t bytes) {
    std::string chunk(k_spam_line_bytes * k_spam_chunk_lines, 'x');
    std::uint64_t written = 0;
    std::uint64_t line_number = 0;
    while (written < bytes) {
        const std::size_t size = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), bytes - written));
        for (std::size_t offset = 0; offset < size; offset += k_spam_line_bytes) {
            format_spam_line(chunk.data() + offset, line_number++);
        }
        // A short final line still ends in '\n' so "log spam done" starts on its own line.
        chunk[size - 1] = '\n';
        if (!write_all(g_log_fd, std::string_view(chunk.data(), size))) return;
        written += size;
    }
    log_line("log spam done");
}

bool RequestLog::open(const std::string& path, std::string& error) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        error = "can't open request log " + path + ": " + std::strerror(errno);
        return false;
    }
    return true;
}

void RequestLog::record(std::int64_t start_ns, std::int64_t end_ns, bool stream, std::string_view user_message) const {
    if (fd_ < 0) return;
    std::string line =
        std::to_string(start_ns) + ' ' + std::to_string(end_ns) + ' ' + std::to_string(::getpid()) + ' ' + (stream ? '1' : '0') + ' ';
    line += nlohmann::json(std::string(user_message)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line.push_back('\n');
    // One write(2) on an O_APPEND fd keeps lines whole even with several servers sharing the file.
    (void)::write(fd_, line.data(), line.size());
}

} // namespace mock
