#include "llmctl/process.hpp"

#include "llmctl/strings.hpp"

#include <chrono>
#include <cstdlib>
#include <dirent.h>
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
    auto st = read_proc_stat(id.pid);
    return st && st->state != 'Z' && st->state != 'X' && st->start_ticks == id.start_ticks;
}

std::vector<pid_t> list_pids() {
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    if (!d) return out;
    while (auto* e = ::readdir(d)) {
        char* end = nullptr;
        long v = std::strtol(e->d_name, &end, 10);
        if (end && *end == '\0' && v > 0) out.push_back(static_cast<pid_t>(v));
    }
    ::closedir(d);
    return out;
}

long clock_ticks() {
    static const long t = ::sysconf(_SC_CLK_TCK);
    return t;
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

} // namespace llmctl
