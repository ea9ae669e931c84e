#include "llmctl/caught_signals.hpp"

#include <atomic>
#include <csignal>
#include <initializer_list>

namespace llmctl {

namespace {

std::atomic<bool> g_sigint{false};
volatile sig_atomic_t g_cancel = 0; // the signal that cancelled
std::atomic<int> g_cancels{0};      // how many came (lock-free: safe in a handler)
volatile sig_atomic_t g_forward_target = 0;
std::atomic<bool> g_sighup{false};

void on_sigint(int) { g_sigint = true; }

void on_cancel(int sig) {
    g_cancel = sig;
    g_cancels.fetch_add(1);
}
void on_sighup(int) { g_sighup = true; }

// Passed on: signals sent with kill(2), except by the target itself.
void forward(int sig, siginfo_t* info, void*) {
    pid_t target = g_forward_target;
    if (target > 0 && info && info->si_code != SI_KERNEL && info->si_pid != target) ::kill(target, sig);
}

// Installs `sa` for each of `sigs`, with an empty mask.
void install(std::initializer_list<int> sigs, struct sigaction sa) {
    sigemptyset(&sa.sa_mask);
    for (int s : sigs) ::sigaction(s, &sa, nullptr);
}

} // namespace

void catch_sigint() {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    install({SIGINT}, sa);
}

bool sigint_received() { return g_sigint; }
void clear_sigint() { g_sigint = false; }

void catch_cancel() {
    struct sigaction sa {};
    sa.sa_handler = on_cancel;
    install({SIGINT, SIGTERM, SIGHUP}, sa);
}

int cancel_signal() { return g_cancel; }

int cancel_count() { return g_cancels.load(); }

void catch_sighup() {
    struct sigaction sa {};
    sa.sa_handler = on_sighup;
    sa.sa_flags = SA_RESTART;
    install({SIGHUP}, sa);
}

bool take_sighup() { return g_sighup.exchange(false); }

void forward_signals() {
    struct sigaction sa {};
    sa.sa_sigaction = forward;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    install({SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}, sa);
}

void set_forward_target(pid_t pid) { g_forward_target = pid; }

} // namespace llmctl
