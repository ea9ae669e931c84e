#include "llmctl/process.hpp"

#include "llmctl/files.hpp"
#include "llmctl/strings.hpp"

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace llmctl {

std::optional<ProcStat> parse_proc_stat(const std::string& text) {
    // "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
    //  stime cutime cstime priority nice threads itrealvalue starttime vsize rss ..."
    auto open = text.find('(');
    auto close = text.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
    ProcStat st;
    st.pid = static_cast<pid_t>(std::strtol(text.c_str(), nullptr, 10));
    const char* p = text.c_str() + close + 1;
    // Fields after comm, numbered from 3 (state).
    std::vector<std::string_view> f;
    std::string_view rest(p);
    std::size_t i = 0;
    while (i < rest.size() && f.size() < 22) {
        while (i < rest.size() && rest[i] == ' ') ++i;
        std::size_t j = i;
        while (j < rest.size() && rest[j] != ' ' && rest[j] != '\n') ++j;
        if (j > i) f.push_back(rest.substr(i, j - i));
        i = j + 1;
    }
    if (f.size() < 22) return std::nullopt;
    auto num = [&](std::size_t field) { return std::strtoull(std::string(f[field - 3]).c_str(), nullptr, 10); };
    st.state = f[0].empty() ? '?' : f[0][0];
    st.ppid = static_cast<pid_t>(num(4));
    st.pgrp = static_cast<pid_t>(num(5));
    st.session = static_cast<pid_t>(num(6));
    st.start_ticks = num(22);
    st.rss_pages = num(24);
    return st;
}

std::optional<ProcStat> read_proc_stat(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    auto text = read_file("/proc/" + std::to_string(pid) + "/stat");
    if (!text) return std::nullopt;
    return parse_proc_stat(*text);
}

const std::string& boot_id() {
    static const std::string id = [] {
        std::string s = read_file("/proc/sys/kernel/random/boot_id").value_or("");
        while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
        return s;
    }();
    return id;
}

std::optional<Identity> identity_of(pid_t pid) {
    auto st = read_proc_stat(pid);
    if (!st || st->state == 'Z' || st->state == 'X') return std::nullopt;
    return Identity{pid, st->start_ticks, boot_id()};
}

Identity self_identity() {
    static const Identity me = *identity_of(::getpid());
    return me;
}

bool is_alive(const Identity& id) {
    if (id.pid <= 0 || id.boot_id != boot_id()) return false;
    // Ourselves (a gateway owns most leases it looks at): reading /proc/self/stat sums the CPU
    // times of every thread, a thousand of them in a busy gateway. (After a fork the cached
    // identity is the parent's, and /proc decides.)
    if (const Identity& me = self_identity(); id.pid == ::getpid() && me.pid == id.pid) return me.start_ticks == id.start_ticks;
    auto st = read_proc_stat(id.pid);
    return st && st->state != 'Z' && st->state != 'X' && st->start_ticks == id.start_ticks;
}

bool is_alive_lately(const Identity& id, Millis max_age) {
    using clock = std::chrono::steady_clock;
    struct Look {
        Identity id;
        bool alive = false;
        clock::time_point at;
    };
    static std::mutex mu;
    static std::vector<Look> looks; // a few servers
    const auto now = clock::now();
    {
        std::lock_guard<std::mutex> g(mu);
        for (const Look& l : looks)
            if (l.id == id && now - l.at < max_age) return l.alive;
    }
    const bool alive = is_alive(id);
    std::lock_guard<std::mutex> g(mu);
    std::erase_if(looks, [&](const Look& l) { return l.id.pid == id.pid || now - l.at >= max_age; });
    looks.push_back(Look{id, alive, now});
    return alive;
}

std::vector<pid_t> list_pids() {
    std::vector<pid_t> out;
    for (const auto& name : list_dir("/proc")) {
        char* end = nullptr;
        long v = std::strtol(name.c_str(), &end, 10);
        if (end && *end == '\0' && v > 0) out.push_back(static_cast<pid_t>(v));
    }
    return out;
}

namespace {

std::string proc_path(pid_t pid, const char* file) { return "/proc/" + std::to_string(pid) + "/" + file; }

// The NUL-terminated strings of a /proc file (environ, cmdline).
std::vector<std::string> split_nul(const std::string& text) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\0', pos);
        if (end == std::string::npos) end = text.size();
        out.push_back(text.substr(pos, end - pos));
        pos = end + 1;
    }
    return out;
}

} // namespace

bool owned_by_me(pid_t pid) {
    struct stat sb {};
    return ::stat(("/proc/" + std::to_string(pid)).c_str(), &sb) == 0 && sb.st_uid == ::geteuid();
}

std::vector<std::string> proc_environ(pid_t pid) { return split_nul(read_file(proc_path(pid, "environ")).value_or("")); }

std::vector<std::string> proc_cmdline(pid_t pid) { return split_nul(read_file(proc_path(pid, "cmdline")).value_or("")); }

std::string proc_comm(pid_t pid) {
    auto comm = read_file(proc_path(pid, "comm")).value_or("?");
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    return comm;
}

std::int64_t process_started_ms(std::uint64_t start_ticks) {
    static std::int64_t btime = [] {
        auto stat = read_file("/proc/stat").value_or("");
        auto p = stat.find("\nbtime ");
        return p == std::string::npos ? std::int64_t{0} : std::stoll(stat.substr(p + 7));
    }();
    return btime * 1000 + static_cast<std::int64_t>(start_ticks) * 1000 / clock_ticks();
}

long clock_ticks() {
    static const long t = ::sysconf(_SC_CLK_TCK);
    return t;
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int reap_exited_children() {
    int n = 0;
    int status = 0;
    while (::waitpid(-1, &status, WNOHANG) > 0) ++n;
    return n;
}

} // namespace llmctl
