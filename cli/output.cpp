#include "output.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <unistd.h>

namespace llmctl::cli {

namespace {
std::atomic<bool> g_sigint{false};
void on_sigint(int) { g_sigint = true; }
} // namespace

void write_stdout(std::string_view s) {
    while (!s.empty()) {
        ssize_t n = ::write(STDOUT_FILENO, s.data(), s.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw StdoutClosed{};
        s.remove_prefix(static_cast<std::size_t>(n));
    }
}

void catch_sigint() {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    ::sigaction(SIGINT, &sa, nullptr);
}

bool sigint_received() { return g_sigint; }
void clear_sigint() { g_sigint = false; }

} // namespace llmctl::cli
