#pragma once
// Probes (issue 20): `probe = "health" | "completion"`, run by `llmctl probe`, the monitor's child
// for as long as the server runs (not by cron). Every probe_every it checks the running server:
// "health" wants its health path to answer 200 within probe_timeout; "completion" takes a slot
// like any request (so a max_concurrent = 1 model is never overloaded) and wants a one-token
// completion within probe_timeout. A completion probe that gets no slot within probe_timeout
// while the slot's holders received no byte in that time (leases' progress_at) fails too. A
// failed probe makes the server `wedged` (an event and a line in its log); when its restart
// policy is not "no", the prober stops the server and the monitor's record of the exit restarts
// it. Probes never refresh last_used.

#include "llmctl/config.hpp"
#include "llmctl/process.hpp"

#include <cstdint>
#include <functional>
#include <string>

namespace llmctl {

// What the prober is given (on the monitor's command line, as JSON).
struct ProbeSpec {
    std::string kind; // "health" | "completion"
    Millis every{30'000}, timeout{10'000}, stop_timeout{10'000};
    std::string model; // the API's model field
    std::string health;
    std::string restart; // the policy when it started; the config file's, read again, decides
    std::string origin;  // that config file ("<built-in>", a path)
    int max_concurrent = 1;
};

// The JSON a model's monitor passes on; "" for a model without a probe.
std::string probe_spec_json(const ModelConfig& m);
// Throws Error(usage) for text that is not such JSON.
ProbeSpec parse_probe_spec(const std::string& json);

// One probe's verdict.
struct ProbeVerdict {
    bool ok = true;
    bool no_slot = false; // failed for want of a slot while its holders heard nothing: wedged only twice running
    std::string why;      // when not ok: "a one-token completion failed: …", …
};

// Probes `name` (instance `instance`, server `server`) until the server is gone or its row names
// another instance. `note` gets lines for the server's log.
void run_prober(const std::string& state_dir, const std::string& name, const std::string& instance, const Identity& server,
                const ProbeSpec& spec, const std::function<void(const std::string&)>& note);

// The row error of a server its prober stops for being wedged ("wedged: WHY"), and whether a row
// error is one: its exit is then a failure whatever the code, and its cause says why.
std::string wedged_error(const std::string& why);
bool stopped_as_wedged(const std::string& row_error);

// A client with a lease on a model whose answer is flowing says so (leases.progress_at), at most
// once a second, so a probe can tell a busy server from a wedged one. Only for a model with a
// completion probe (`wanted`): nothing is written otherwise. With a broker (serve), the write
// goes through it without waiting; else one SQLite write without the state lock.
class LeaseBroker;
class ProgressNote {
public:
    // Made when the slot is granted (its acquired_at is the first progress).
    ProgressNote(std::string state_dir, bool wanted, LeaseBroker* broker = nullptr);
    void byte_arrived(std::int64_t lease);

private:
    std::string dir_;
    bool wanted_;
    LeaseBroker* broker_;
    std::int64_t last_ = 0;
};

} // namespace llmctl
