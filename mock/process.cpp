#include "process.hpp"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace mock {
namespace {

[[noreturn]] void sleep_forever() {
    for (;;) ::pause();
}

sigset_t handled_signals(const Options& options) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    // An ignored SIGTERM is discarded at generation, so it must stay out of the sigwait set.
    if (!options.ignore_sigterm) sigaddset(&set, SIGTERM);
    return set;
}

[[noreturn]] void on_termination_signal(ServerState& state, int signal) {
    if (state.options.abort_on_term_in_flight && state.chats_in_flight > 0) {
        // llama-server dies this way when its HTTP thread is torn down mid-request.
        try_write_line(2, "terminate called without an active exception");
        // A core file per test run would litter the working directory; the SIGABRT is what matters.
        rlimit no_core{0, 0};
        ::setrlimit(RLIMIT_CORE, &no_core);
        std::abort();
    }
    // try_write_line: a full log pipe must not delay the exit.
    try_write_line(log_fd(), std::string("mock: received ") + (signal == SIGTERM ? "SIGTERM" : "SIGINT") + ", exiting");
    ::_exit(0);
}

} // namespace

void set_early_signal_dispositions(const Options& options) {
    std::signal(SIGPIPE, SIG_IGN);
    if (options.ignore_sigterm) std::signal(SIGTERM, SIG_IGN);
}

bool hold_memory(std::uint64_t bytes) {
    if (bytes == 0) return true;
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    const long page = ::sysconf(_SC_PAGESIZE);
    auto* bytes_at = static_cast<volatile char*>(p);
    for (std::uint64_t at = 0; at < bytes; at += static_cast<std::uint64_t>(page)) bytes_at[at] = 1; // (the mapping is never unmapped)
    return true;
}

void fork_sleeping_children(int n) {
    for (int i = 0; i < n; ++i) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            std::signal(SIGPIPE, SIG_DFL);
            sleep_forever();
        }
        if (pid < 0) err_line(std::string("mock: fork failed: ") + std::strerror(errno));
    }
}

pid_t fork_escaped_child() {
    int ready[2];
    if (::pipe(ready) != 0) return -1;
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(ready[0]);
        ::setsid();
        // It escapes to be found by pid alone, so a plain SIGTERM must still end it.
        std::signal(SIGTERM, SIG_DFL);
        std::signal(SIGPIPE, SIG_DFL);
        (void)::write(ready[1], "x", 1);
        ::close(ready[1]);
        sleep_forever();
    }
    ::close(ready[1]);
    if (pid > 0) {
        // Wait for setsid() so callers that inspect the child see it already escaped.
        char byte;
        while (::read(ready[0], &byte, 1) < 0 && errno == EINTR) {}
    }
    ::close(ready[0]);
    return pid;
}

void reap_children_automatically() { std::signal(SIGCHLD, SIG_IGN); }

void start_signal_thread(ServerState& state) {
    const sigset_t set = handled_signals(state.options);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread([set, &state] {
        for (;;) {
            int signal = 0;
            if (sigwait(&set, &signal) == 0) on_termination_signal(state, signal);
        }
    }).detach();
}

void start_loader(ServerState& state) {
    auto load = [&state] {
        log_line("model loaded");
        state.loaded = true;
    };
    if (state.options.startup_delay.count() == 0 && state.options.loading_until.empty()) {
        load(); // synchronously, so no request can ever see the loading state
        return;
    }
    const auto ready_at = std::chrono::steady_clock::now() + state.options.startup_delay;
    std::thread([ready_at, load, until = state.options.loading_until] {
        std::this_thread::sleep_until(ready_at);
        while (!until.empty() && ::access(until.c_str(), F_OK) != 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        load();
    }).detach();
}

void start_exit_timer(Duration delay) {
    const auto exit_at = std::chrono::steady_clock::now() + delay;
    std::thread([exit_at] {
        std::this_thread::sleep_until(exit_at);
        try_write_line(log_fd(), "mock: exit-after elapsed, exiting");
        ::_exit(0);
    }).detach();
}

void start_crash_timer(Duration delay, int sig) {
    const auto crash_at = std::chrono::steady_clock::now() + delay;
    std::thread([crash_at, sig] {
        std::this_thread::sleep_until(crash_at);
        crash_now(sig, "crash-after elapsed");
    }).detach();
}

void crash_now(int sig, const char* why) {
    std::string line = std::string("mock: ") + why + ", raising signal " + std::to_string(sig);
    try_write_line(log_fd(), line);
    std::signal(sig, SIG_DFL);
    ::raise(sig);
    ::_exit(128 + sig); // a signal that does not end a process by default
}

void start_log_spam(std::uint64_t bytes) {
    std::thread([bytes] { write_log_spam(bytes); }).detach();
}

} // namespace mock
