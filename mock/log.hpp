#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mock {

// Writes all of data to fd, retrying short writes and EINTR; false on any other error.
bool write_all(int fd, std::string_view data);

// Chooses where log lines go (1 or 2); call once before any thread starts.
void set_log_fd(int fd);

// The fd log lines go to.
int log_fd();

// Writes line plus '\n' to the log fd in one write(2), so concurrent lines never interleave.
void log_line(std::string_view line);

// Like log_line but to stderr, whatever --stderr-only says.
void err_line(std::string_view line);

// Writes line only if fd can take it now; used on exit paths that must not block on a full pipe.
void try_write_line(int fd, std::string_view line);

// CLOCK_REALTIME in nanoseconds: comparable across processes, unlike steady_clock.
std::int64_t realtime_ns();

// Writes exactly bytes of fixed 64-byte "spam NNNNNNNNNNNN xxx...\n" lines, then "log spam done".
void write_log_spam(std::uint64_t bytes);

// Append-only per-request record; each line is one O_APPEND write(2), safe across threads and processes.
class RequestLog {
public:
    // Opens path for appending; on failure returns false with error set. Never called = disabled.
    bool open(const std::string& path, std::string& error);

    // Appends "<start_ns> <end_ns> <pid> <stream> <json string>\n"; no-op when disabled.
    void record(std::int64_t start_ns, std::int64_t end_ns, bool stream, std::string_view user_message) const;

private:
    int fd_ = -1;
};

} // namespace mock
