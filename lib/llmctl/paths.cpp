#include "llmctl/paths.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/files.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llmctl {

namespace {

std::string state_dir_as_given(const std::string& cli) {
    if (!cli.empty()) return cli;
    if (const char* e = std::getenv("LLMCTL_HOME"); e && *e) return e;
    if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/llmctl";
    const char* h = std::getenv("HOME");
    if (!h || !*h) throw Error(Exit::failure, "cannot find a state dir: HOME is not set", "pass --state-dir DIR or set LLMCTL_HOME");
    return std::string(h) + "/.local/state/llmctl";
}

// The first component of `path` that is a symlink whose target does not exist, or "".
std::string dangling_symlink_in(const std::filesystem::path& path) {
    std::filesystem::path walked;
    for (const auto& part : path) {
        walked /= part;
        struct stat st {};
        if (::lstat(walked.c_str(), &st) != 0) return {};
        if (S_ISLNK(st.st_mode) && ::access(walked.c_str(), F_OK) != 0) return walked.string();
    }
    return {};
}

} // namespace

std::string canonical_path(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path abs = fs::absolute(path, ec);
    if (ec) throw Error(Exit::failure, fmt::format("cannot resolve {}: {}", path, ec.message()));
    if (auto bad = dangling_symlink_in(abs); !bad.empty())
        throw Error(Exit::failure, fmt::format("{} is a symlink to something that does not exist", bad),
                    "create its target, or point the state dir elsewhere");
    fs::path canon = fs::weakly_canonical(abs, ec);
    if (ec) throw Error(Exit::failure, fmt::format("cannot resolve {}: {}", path, ec.message()));
    std::string out = canon.lexically_normal().string();
    while (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
}

std::string resolve_state_dir(const std::string& cli) { return canonical_path(state_dir_as_given(cli)); }

namespace {

void check_stat(const std::string& dir, const struct stat& st) {
    if (!S_ISDIR(st.st_mode)) throw Error(Exit::failure, fmt::format("state dir {} is not a directory", dir));
    if (st.st_uid != ::geteuid())
        throw Error(Exit::failure, fmt::format("state dir {} is owned by uid {}, not by you (uid {})", dir, st.st_uid, ::geteuid()),
                    "use a state dir of your own (--state-dir or LLMCTL_HOME)");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        throw Error(Exit::failure, fmt::format("state dir {} is writable by group or others (mode {:03o})", dir, st.st_mode & 0777),
                    fmt::format("another user could tamper with it; run: chmod 700 {}", dir));
}

void mkdir_p(const std::string& dir, mode_t mode) {
    if (dir.empty()) return;
    if (::mkdir(dir.c_str(), mode) == 0 || errno == EEXIST) return;
    if (errno != ENOENT) throw_sys("mkdir", dir, errno);
    auto slash = dir.find_last_of('/');
    if (slash == std::string::npos || slash == 0) throw_sys("mkdir", dir, ENOENT);
    mkdir_p(dir.substr(0, slash), 0755);
    if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) throw_sys("mkdir", dir, errno);
}

} // namespace

bool check_state_dir(const std::string& dir) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        if (errno == ENOENT) return false;
        throw_sys("stat", dir, errno);
    }
    check_stat(dir, st);
    return true;
}

void ensure_state_dir(const std::string& dir) {
    if (!check_state_dir(dir)) {
        mkdir_p(dir, 0700);
        ::chmod(dir.c_str(), 0700); // mkdir honours the umask; the mode must be exact
        check_state_dir(dir);
    }
    std::string logs = dir + "/logs";
    if (::mkdir(logs.c_str(), 0700) != 0 && errno != EEXIST) throw_sys("mkdir", logs, errno);
}

std::string self_exe_dir() {
    std::string p = self_exe();
    return p.substr(0, p.find_last_of('/'));
}

namespace {

// A program installed with llmctl: beside the running binary (build tree), or in
// ../libexec/llmctl/ (installed). Reported as missing when it is run.
std::string bundled_program(const std::string& name) {
    std::string dir = self_exe_dir();
    for (const std::string& c : {dir + "/" + name, dir + "/../libexec/llmctl/" + name}) {
        if (::access(c.c_str(), X_OK) == 0) {
            char real[PATH_MAX];
            return ::realpath(c.c_str(), real) ? std::string(real) : c;
        }
    }
    return dir + "/" + name;
}

} // namespace

std::string bundled_mock_server() { return bundled_program("llmctl-mock-server"); }

std::string bundled_monitor() { return bundled_program("llmctl-monitor"); }

std::string bundled_tls_helper() { return bundled_program("llmctl-tls"); }

std::string bundled_top_view() { return bundled_program("llmctl-top"); }

std::string self_exe() {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) throw_sys("readlink", "/proc/self/exe", errno);
    return std::string(buf, static_cast<std::size_t>(n));
}

std::string state_db_path(const std::string& dir) { return dir + "/state.db"; }
std::string state_lock_path(const std::string& dir) { return dir + "/state.lock"; }
std::string log_path(const std::string& dir, const std::string& name) { return dir + "/logs/" + name + ".log"; }

std::vector<std::string> logged_names(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& f : list_dir(dir + "/logs"))
        if (f.size() > 4 && f.ends_with(".log")) names.push_back(f.substr(0, f.size() - 4));
    std::sort(names.begin(), names.end());
    return names;
}

} // namespace llmctl
