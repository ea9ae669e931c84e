#pragma once
// stdout for commands that stream (chat, logs -f): every byte written, and a reader that went
// away (EPIPE; SIGPIPE is ignored) ends the command quietly. Ctrl-C as a flag to poll.

#include <string_view>

namespace llmctl::cli {

struct StdoutClosed {};

// Writes all of `s` to stdout; throws StdoutClosed when the reader is gone.
void write_stdout(std::string_view s);

// From now on SIGINT sets a flag instead of killing the process.
void catch_sigint();
bool sigint_received();
void clear_sigint();

} // namespace llmctl::cli
