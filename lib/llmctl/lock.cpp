#include "llmctl/lock.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/fault.hpp"
#include "llmctl/strings.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <thread>

namespace llmctl {

Millis lock_timeout() {
    if (const char* e = std::getenv("LLMCTL_LOCK_TIMEOUT"); e && *e) {
        if (auto d = parse_duration(e)) return *d;
        throw Error(Exit::usage, fmt::format("LLMCTL_LOCK_TIMEOUT: bad duration \"{}\"", e), "write it like \"30s\" or \"500ms\"");
    }
    return Millis(30'000);
}

FileLock FileLock::acquire(const std::string& path, Millis timeout) {
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) throw_sys("open", path, errno);
    auto start = std::chrono::steady_clock::now();
    auto deadline = start + timeout;
    auto backoff = std::chrono::microseconds(500);
    for (;;) {
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) break;
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK) throw_sys("flock", path, errno);
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            std::string holder = read_file(path).value_or("");
            while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
            throw Error(Exit::timeout,
                        fmt::format("timed out after {} waiting for the state lock {} (held by pid {})",
                                    format_duration(timeout), path, holder.empty() ? "unknown" : holder),
                        "another llmctl is busy; raise LLMCTL_LOCK_TIMEOUT or check that process");
        }
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(backoff, deadline - now));
        backoff = std::min(backoff * 2, std::chrono::microseconds(50'000));
    }
    // Record the holder so a waiter that times out can name it.
    std::string me = fmt::format("{}\n", ::getpid());
    if (::ftruncate(fd.get(), 0) == 0) (void)!::pwrite(fd.get(), me.data(), me.size(), 0);
    FileLock lock(std::move(fd));
    fault_point("hold-lock");
    return lock;
}

void FileLock::release() {
    if (fd_.valid()) {
        (void)!::ftruncate(fd_.get(), 0);
        ::flock(fd_.get(), LOCK_UN);
        fd_.reset();
    }
}

FileLock::~FileLock() { release(); }

} // namespace llmctl
