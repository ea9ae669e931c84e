// llmctl-monitor: the parent of one server, for as long as it runs (ARCHITECTURE.md, "Exit
// causes: a monitor per server"). It waits for the server, then becomes `llmctl monitor-exit`,
// which records the exit with its cause under the state lock and applies the restart policy.
//
// It is small on purpose (about 100 KiB of private memory: no C++ library, no allocation) and
// carries none of llmctl's markers, so the marker scan, stop's process set and the orphan scan
// never take it for its server. It lives in a session of its own: a Ctrl-C at the terminal of
// the chat or exec that started the server never reaches it.
//
//   llmctl-monitor LLMCTL STATE_DIR NAME INSTANCE SERVER_PID CONFIG [PROBE]
//
// CONFIG is the config file the server was started from ("" for the built-in one). With PROBE
// (the model's probe settings, JSON), it also runs `llmctl probe` as its child for the server's
// life: killed when the server exits, and dying with the monitor (PR_SET_PDEATHSIG).

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

// The kernel's count of OOM kills since boot (/proc/vmstat, oom_kill), or -1.
long long oom_kills() {
    int fd = ::open("/proc/vmstat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    static char buf[16384];
    ssize_t n, len = 0;
    while (len < static_cast<ssize_t>(sizeof buf) - 1 && (n = ::read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += n;
    ::close(fd);
    buf[len] = 0;
    const char* p = std::strstr(buf, "\noom_kill ");
    return p ? std::strtoll(p + 10, nullptr, 10) : -1;
}

long long now_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Forks `llmctl probe` (see prober.hpp); its pid, or 0 when it could not be forked.
pid_t start_prober(char** argv) {
    const pid_t monitor = ::getpid();
    pid_t p = ::fork();
    if (p != 0) return p > 0 ? p : 0;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL); // a monitor killed takes its prober along
    if (::getppid() != monitor) ::_exit(0);
    const char* args[] = {"llmctl", "--state-dir", argv[2], "probe",  argv[3], "--instance",
                          argv[4],  "--pid",       argv[5], "--spec", argv[7], nullptr};
    ::execv(argv[1], const_cast<char* const*>(args));
    ::_exit(127);
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 7 && argc != 8) {
        std::fprintf(stderr, "llmctl-monitor: started by llmctl only (LLMCTL STATE_DIR NAME INSTANCE SERVER_PID CONFIG [PROBE])\n");
        return 2;
    }
    const char* llmctl = argv[1];
    const char* pid_text = argv[5];
    const pid_t pid = static_cast<pid_t>(std::atol(pid_text));
    // Signals meant for a terminal's foreground group or a hangup are not for us; SIGTERM and
    // SIGKILL still end the monitor (the server then runs on unmonitored: its exit is "unknown").
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGQUIT, SIG_IGN);
    std::signal(SIGHUP, SIG_IGN);
    std::signal(SIGPIPE, SIG_IGN);
    if (::chdir("/") != 0) {} // hold no directory busy
    const long long oom_before = oom_kills();

    const pid_t prober = argc == 8 ? start_prober(argv) : 0;

    int status = 0;
    pid_t got;
    while ((got = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {}
    if (got != pid) return 1; // not our child: nothing to report
    const long long at = now_ms();
    const long long oom_after = oom_kills();
    if (prober > 0) { // nothing left to probe
        ::kill(prober, SIGKILL);
        while (::waitpid(prober, nullptr, 0) < 0 && errno == EINTR) {}
    }

    char status_s[24], oom_s[24], at_s[24];
    std::snprintf(status_s, sizeof status_s, "%d", status);
    std::snprintf(oom_s, sizeof oom_s, "%lld", oom_before >= 0 && oom_after >= 0 ? oom_after - oom_before : -1);
    std::snprintf(at_s, sizeof at_s, "%lld", at);
    const char* args[] = {"llmctl", "--state-dir", argv[2],  "monitor-exit",  argv[3],  "--instance",
                          argv[4],  "--pid",       pid_text, "--wait-status", status_s, "--oom-kills",
                          oom_s,    "--at",        at_s,     "--origin",      argv[6],  nullptr};
    ::execv(llmctl, const_cast<char* const*>(args));
    std::fprintf(stderr, "llmctl-monitor: cannot run %s to record the exit of pid %s: %s\n", llmctl, pid_text, std::strerror(errno));
    return 1;
}
