#include "llmctl/lock.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/fault.hpp"
#include "llmctl/files.hpp"
#include "llmctl/strings.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <map>
#include <thread>
#include <ctime>
#include <unistd.h>

namespace llmctl {

namespace {

std::chrono::nanoseconds process_cpu_time() {
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

} // namespace

bool debug_enabled(std::string_view topic) {
    static const std::string topics = [] {
        const char* e = std::getenv("LLMCTL_DEBUG");
        return std::string(e ? e : "");
    }();
    std::string_view rest = topics;
    while (!rest.empty()) {
        auto comma = rest.find(',');
        auto word = rest.substr(0, comma);
        if (word == topic || word == "all") return true;
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    return false;
}

FileLock::FileLock(std::unique_lock<std::timed_mutex> in_process, Fd fd, std::chrono::steady_clock::time_point asked)
    : in_process_(std::move(in_process)), fd_(std::move(fd)), asked_(asked), since_(std::chrono::steady_clock::now()),
      cpu_since_(debug_enabled("lock") ? process_cpu_time() : std::chrono::nanoseconds{}) {}

Millis lock_timeout() {
    if (const char* e = std::getenv("LLMCTL_LOCK_TIMEOUT"); e && *e) {
        if (auto d = parse_duration(e)) return d->count() > 0 ? *d : Millis(std::int64_t{1} << 40); // 0: no limit
        throw Error(Exit::usage, fmt::format("LLMCTL_LOCK_TIMEOUT: bad duration \"{}\"", e), "write it like \"30s\" or \"500ms\"");
    }
    return Millis(30'000);
}

namespace {

// The in-process mutex of a lock file (one per path, never freed: a process uses one or two). A
// forked child starts afresh: the parent's may be held by a thread the child does not have.
std::timed_mutex& in_process_mutex(const std::string& path) {
    static std::mutex guard;
    static pid_t owner = 0;
    static std::map<std::string, std::timed_mutex>* mutexes = nullptr;
    std::lock_guard<std::mutex> g(guard);
    if (owner != ::getpid()) {
        mutexes = new std::map<std::string, std::timed_mutex>(); // the parent's is left as it is
        owner = ::getpid();
    }
    return (*mutexes)[path];
}

} // namespace

std::unique_lock<std::timed_mutex> FileLock::queue_in_process(const std::string& path, Millis timeout) {
    std::unique_lock<std::timed_mutex> turn(in_process_mutex(path), std::defer_lock);
    if (!turn.try_lock_for(timeout))
        throw Error(Exit::timeout,
                    fmt::format("timed out after {} waiting for the state lock {} (held in this process)", format_duration(timeout), path),
                    "this llmctl is busy; raise LLMCTL_LOCK_TIMEOUT");
    return turn;
}

FileLock FileLock::acquire(const std::string& path, Millis timeout) {
    auto turn = queue_in_process(path, timeout);
    return acquire_file(path, timeout, std::move(turn));
}

FileLock FileLock::acquire_file(const std::string& path, Millis timeout, std::unique_lock<std::timed_mutex> in_process) {
    auto start = std::chrono::steady_clock::now();
    auto deadline = start + timeout;
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) throw_sys("open", path, errno);
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
                        fmt::format("timed out after {} waiting for the state lock {} (held by pid {})", format_duration(timeout), path,
                                    holder.empty() ? "unknown" : holder),
                        "another llmctl is busy; raise LLMCTL_LOCK_TIMEOUT or check that process");
        }
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(backoff, deadline - now));
        backoff = std::min(backoff * 2, std::chrono::microseconds(50'000));
    }
    // Record the holder so a waiter that times out can name it.
    std::string me = fmt::format("{}\n", ::getpid());
    if (::ftruncate(fd.get(), 0) == 0) (void)!::pwrite(fd.get(), me.data(), me.size(), 0);
    FileLock lock(std::move(in_process), std::move(fd), start);
    fault_point("hold-lock");
    return lock;
}

void FileLock::release() {
    if (fd_.valid()) {
        (void)!::ftruncate(fd_.get(), 0);
        ::flock(fd_.get(), LOCK_UN);
        fd_.reset();
        if (in_process_.owns_lock()) in_process_.unlock();
        if (debug_enabled("lock")) {
            using std::chrono::duration_cast;
            using std::chrono::microseconds;
            auto now = std::chrono::steady_clock::now();
            std::string line =
                fmt::format("llmctl: debug: lock pid={} wait_us={} held_us={} cpu_us={}\n", ::getpid(),
                            duration_cast<microseconds>(since_ - asked_).count(), duration_cast<microseconds>(now - since_).count(),
                            duration_cast<microseconds>(process_cpu_time() - cpu_since_).count());
            (void)!::write(STDERR_FILENO, line.data(), line.size());
        }
    }
}

FileLock::~FileLock() { release(); }

} // namespace llmctl
