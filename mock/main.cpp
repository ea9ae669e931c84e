// llmctl-mock-server: deterministic OpenAI-compatible server with injectable faults (its --help lists them).
#include "http.hpp"
#include "log.hpp"
#include "options.hpp"
#include "process.hpp"
#include "state.hpp"
#include "tls_front.hpp"

#include <unistd.h>
#include <boost/asio/io_context.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
    using namespace mock;

    ParseResult parsed = parse_options(argc, argv);
    if (!parsed.options) {
        write_all(parsed.exit_code == 0 ? 1 : 2, parsed.message);
        return parsed.exit_code;
    }
    Options& options = *parsed.options;
    set_log_fd(options.stderr_only ? 2 : 1);
    if (!options.wedge_once.empty() && ::unlink(options.wedge_once.c_str()) == 0) {
        options.wedge = true;
        log_line("wedged (--wedge-once): health answers, chats and completions never do");
    }

    if (options.crash_at_start) {
        err_line("mock: simulated crash at start");
        return 3;
    }

    // Forking happens first, while the process is still single-threaded and holds no socket.
    set_early_signal_dispositions(options);
    fork_sleeping_children(options.fork_children);
    if (options.escape_child) {
        const pid_t pid = fork_escaped_child();
        if (pid > 0) log_line("escaped child pid " + std::to_string(pid));
    }
    reap_children_automatically();
    if (!hold_memory(options.hold_memory)) {
        err_line("llmctl-mock-server: cannot hold " + std::to_string(options.hold_memory) + " bytes: " + std::strerror(errno));
        return 1;
    }
    if (options.hold_memory > 0) log_line("holding " + std::to_string(options.hold_memory) + " bytes");

    ServerState state(options);
    if (!options.request_log.empty()) {
        std::string error;
        if (!state.request_log.open(options.request_log, error)) {
            err_line("llmctl-mock-server: " + error);
            return 2;
        }
    }
    start_signal_thread(state);

    boost::asio::io_context io;
    std::string error;
    std::unique_ptr<TlsFront> tls;
    if (!options.tls_cert.empty() && !(tls = TlsFront::make(options, error))) {
        err_line("llmctl-mock-server: " + error);
        return 2;
    }
    auto acceptor = bind_listener(io, options, error);
    if (!acceptor) {
        err_line(error);
        return 1;
    }
    log_line("mock server listening on " + listening_url(*acceptor, options));
    if (options.exit_after) start_exit_timer(*options.exit_after);
    if (options.crash_after) start_crash_timer(*options.crash_after, options.crash_signal);
    start_loader(state);
    if (options.log_spam > 0) start_log_spam(options.log_spam);
    accept_loop(*acceptor, state, tls.get());
}
