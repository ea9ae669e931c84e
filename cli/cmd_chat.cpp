// llmctl chat: a streaming OpenAI chat-completions client with crash-proof per-model slots.

#include "commands.hpp"
#include "output.hpp"
#include "progress.hpp"

#include "llmctl/address.hpp"
#include "llmctl/caught_signals.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/fault.hpp"
#include "llmctl/http_client.hpp"
#include "llmctl/line_editor.hpp"
#include "llmctl/lock.hpp"
#include "llmctl/lookup.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/prober.hpp"
#include "llmctl/openai_error.hpp"
#include "llmctl/recovery.hpp"
#include "llmctl/request_ledger.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/sessions.hpp"
#include "llmctl/slots.hpp"
#include "llmctl/sse.hpp"
#include "llmctl/store.hpp"
#include "llmctl/strings.hpp"
#include "llmctl/supervisor.hpp"
#include "llmctl/utf8.hpp"

#include <cstdlib>
#include <cmath>
#include <climits>
#include <fmt/format.h>
#include <iostream>
#include <iterator>
#include <thread>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace llmctl::cli {

namespace {

struct Opts {
    std::string name;
    std::vector<std::string> prompt;
    std::string system, session;
    std::vector<std::string> stop;
    std::optional<int> max_tokens;
    std::optional<double> temperature, top_p;
    std::optional<long> seed;
    bool no_stream = false, json = false, no_start = false;
    bool quiet = false;                                                                      // -q: no queue place on the terminal
    std::string timeout, connect_timeout, first_token_timeout, stall_timeout, queue_timeout; // "" = the config's
    std::optional<Millis> queue_limit; // --queue-timeout, parsed before anything starts
};

// Where to send requests: an external model's url, or our server (started if needed).
struct Target {
    Url url;
    std::string bearer;
    std::optional<ServerRow> row; // managed servers, for last_used
};

Target resolve_target(const Opts& o, const ModelConfig& m, const Config& cfg, const std::string& dir, const Globals& g) {
    Target t;
    if (m.external()) {
        t.url = external_url(m);
        t.bearer = external_api_key(m);
        std::cerr << unverified_tls_warning(m);
        return t;
    }
    if (o.no_start) {
        std::optional<ServerRow> row;
        if (check_state_dir(dir))
            if (auto store = Store::open_read(state_db_path(dir))) row = find_server(*store, m.name);
        if (row && row->status == "stopping")
            throw Error(Exit::unknown, fmt::format("{} is stopping (a stop or restart is draining it), and --no-start was given", m.name),
                        "without --no-start, chat waits for it and then starts it again");
        if (!row || row->status != "running" || !is_alive(row->server))
            throw Error(Exit::unknown, fmt::format("{} is not running (and --no-start was given)", m.name),
                        fmt::format("llmctl start {}", m.name));
    } else {
        StartOptions so;
        so.config = &cfg;
        so.admission_timeout = o.queue_limit.value_or(m.queue_timeout); // memory is waited for as a slot is
        StatusLine status(g.verbosity < 0);
        show_start_progress(so, status, g, m.name);
        start_server(dir, m, so);
    }
    if (auto store = Store::open_read(state_db_path(dir))) t.row = find_server(*store, m.name);
    fault_point("chat-row-read");
    if (!t.row || !t.row->port) throw Error(Exit::server, fmt::format("{} has no running server", m.name));
    // A running server's markers must be its row's (a starting one may not have exec'd yet: the
    // chat refreshes its target once it has a slot).
    if (t.row->status == "running") require_row_matches_markers(dir, *t.row);
    t.url = server_url(t.row->host, static_cast<int>(*t.row->port));
    return t;
}

// resolve_target; for a one-shot chat (a request already), a start that failed is counted as
// serve counts a request whose model it could not start (503), so that `llmctl_requests_total`
// sees every chat that got no answer. (The interactive loop has asked nothing yet.)
Target resolve_target_counted(const Opts& o, const ModelConfig& m, const Config& cfg, const std::string& dir, const Globals& g,
                              std::chrono::steady_clock::time_point began, bool one_shot) {
    try {
        return resolve_target(o, m, cfg, dir, g);
    } catch (const Error& e) {
        if (one_shot && (e.code() == Exit::server || e.code() == Exit::timeout)) {
            RequestRecord rec;
            rec.model = m.name;
            rec.via = "chat";
            rec.status = start_failure_error(e).status;
            rec.outcome = "error";
            rec.duration = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - began);
            record_requests(dir, {rec});
        }
        throw;
    }
}

// The request body is JSON, which must be UTF-8: text that is not (a `git diff` of a Latin-1
// file, a stored message edited by hand) is sent with U+FFFD for each invalid sequence, after a
// warning naming the input and its first bad byte.
std::string as_utf8(std::string text, const std::string& where,
                    std::string_view hint = "to send it unchanged, convert it to UTF-8 first, e.g. iconv -f LATIN1 -t UTF-8") {
    auto bad = first_invalid_utf8(text);
    if (!bad) return text;
    std::cerr << fmt::format("llmctl: warning: {} is not valid UTF-8 (first bad byte at offset {}); it is sent with U+FFFD "
                             "in place of each invalid sequence\nhint: {}\n",
                             where, *bad, hint);
    return replace_invalid_utf8(text);
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\n\r\f\v") == std::string::npos; }

// A stored session's messages, each checked for UTF-8 (a warning names the bad one).
Messages load_checked_session(const std::string& dir, const std::string& session) {
    Messages msgs = load_session(dir, session);
    for (std::size_t i = 0; i < msgs.size(); ++i)
        msgs[i].second = as_utf8(std::move(msgs[i].second), fmt::format("message {} of session \"{}\"", i + 1, session));
    return msgs;
}

struct Reply {
    std::string text, finish_reason;
    nlohmann::json usage;
};

// The queue place shown while a chat waits for a slot ("\r…" on stderr), wiped when the wait
// ends, also by an error: the error's message then starts at the left margin.
class QueueLine {
public:
    explicit QueueLine(bool shown_on_terminal) : terminal_(shown_on_terminal) {}
    ~QueueLine() { clear(); }
    void show(const std::string& model, int place) {
        if (!terminal_) return;
        std::cerr << fmt::format("\rllmctl: waiting for a slot on {}: place {} in the queue   ", model, place) << std::flush;
        shown_ = true;
    }
    void clear() {
        if (shown_) std::cerr << "\r" << std::string(70, ' ') << "\r" << std::flush;
        shown_ = false;
    }

private:
    bool terminal_, shown_ = false;
};

// What a request of this chat asks of the model's slots; the queue place goes to `line`.
SlotRequest slot_request(const Opts& o, const ModelConfig& m, const Config& cfg, QueueLine& line) {
    SlotRequest sr;
    sr.model = m.name;
    sr.max_concurrent = std::max(1, m.max_concurrent);
    sr.managed = !m.external();
    sr.take_if_ready = true; // a running server's chat: queued and granted in one transaction
    sr.max_inflight = cfg.defaults.max_inflight;
    if (o.queue_limit) {
        if (o.queue_limit->count() > 0) sr.queue_timeout = o.queue_limit; // --queue-timeout 0: no limit
    } else if (m.queue_timeout.count() > 0)
        sr.queue_timeout = m.queue_timeout;
    sr.cancelled = [] { return sigint_received(); };
    sr.on_wait = [&line, name = m.name](int place) { line.show(name, place); };
    return sr;
}

// One request: slot (the lease `queued` when the chat began, else a new one), POST, relay to
// `out` (none: keep the answer for --json). Throws Error with the documented codes. What token
// accounting keeps of it goes to `rec` as it happens.
Reply ask_once(const Opts& o, const ModelConfig& m, const std::string& dir, const Config& cfg, Target& target, const Messages& msgs,
               const HttpTimeouts& timeouts, AnswerOut* out, const std::function<void()>& refresh_target, QueueLine& queue_line,
               std::optional<QueuedLease>& queued, RequestRecord& rec) {
    const auto began = std::chrono::steady_clock::now();
    auto since_began = [&] { return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - began); };
    std::int64_t chunks = 0;
    nlohmann::json body{{"model", m.model.empty() ? m.name : m.model}, {"stream", !o.no_stream}};
    auto& arr = body["messages"] = nlohmann::json::array();
    for (auto& [role, text] : msgs) arr.push_back({{"role", role}, {"content", text}});
    if (o.max_tokens) body["max_tokens"] = *o.max_tokens;
    if (o.temperature) body["temperature"] = *o.temperature;
    if (o.top_p) body["top_p"] = *o.top_p;
    if (o.seed) body["seed"] = *o.seed;
    if (!o.stop.empty()) body["stop"] = o.stop;
    if (!o.no_stream) body["stream_options"] = {{"include_usage", true}};

    Slot slot = queued ? queued->wait() : Slot::acquire(dir, slot_request(o, m, cfg, queue_line));
    queued.reset();
    rec.queue_wait = since_began();
    ProgressNote progress(dir, m.probe == "completion"); // tells a probe this server answers
    queue_line.clear();
    // While we queued, a stop or restart may have drained and replaced the server (no slot is
    // granted while it is `stopping`), or, in the interactive loop, the server died since the
    // last answer: ask for the server again (started if need be), keeping our slot.
    if (target.row) {
        std::optional<ServerRow> now;
        if (auto store = Store::open_read(state_db_path(dir))) now = find_server(*store, m.name);
        if (!now || now->instance != target.row->instance || now->status != "running" || !is_alive(now->server)) {
            try {
                refresh_target();
            } catch (const Error& e) { // (a start that failed: counted as serve counts it)
                if (e.code() == Exit::server || e.code() == Exit::timeout) rec.status = start_failure_error(e).status;
                throw;
            }
        }
    }

    Reply reply;
    bool done = false;
    std::string stream_error;
    // Tokens that arrived in one read are written with one write(2), at the end of that read:
    // no token waits for a later one, and a fast server does not cost a syscall per token.
    std::string pending;
    SseParser sse([&](const std::string& data) {
        if (done) return;
        if (data == "[DONE]") {
            done = true;
            return;
        }
        ChatDelta d = parse_chat_chunk(data);
        if (!d.error.empty()) stream_error = d.error;
        if (!d.content.empty()) {
            if (!chunks++) rec.first_token = since_began();
            reply.text += d.content;
            if (out) pending += d.content;
        }
        if (!d.finish_reason.empty()) reply.finish_reason = d.finish_reason;
        if (d.has_usage) {
            reply.usage = {{"prompt_tokens", d.prompt_tokens}, {"completion_tokens", d.completion_tokens}};
            rec.tokens_in = d.prompt_tokens;
            rec.tokens_out = d.completion_tokens;
            rec.counted = false;
        } else if (rec.counted) {
            rec.tokens_out = chunks; // (until the server's usage says)
        }
    });
    std::string whole; // non-streaming body
    HttpResult res;
    bool got_bytes = false;
    // Retried with backoff only while nothing has arrived (refused or reset before the answer).
    // Every text in `msgs` and `o.stop` went through as_utf8; replacing is only a safety net.
    const std::string request = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    // However the request ends (answered, failed, cut, Ctrl-C), the idle clock starts then.
    IdleClockAtEnd idle_clock{dir, target.row, m.idle_timeout}; // however the request ends, the idle clock starts then
    for (int attempt = 1;; ++attempt) {
        try {
            res = http_post_stream(
                target.url, "/v1/chat/completions", request, target.bearer, timeouts,
                [&](std::string_view piece) {
                    got_bytes = true;
                    progress.byte_arrived(slot.id());
                    if (o.no_stream)
                        whole.append(piece);
                    else {
                        sse.feed(piece);
                        if (!pending.empty()) {
                            out->write(pending);
                            pending.clear();
                        }
                    }
                },
                [] { return sigint_received(); });
            // 503 before any answer: the server is (re)loading, e.g. one a restart just put on
            // this port. Retried like a refused connection.
            if (res.status == 503 && !got_bytes && attempt < 4 && !sigint_received()) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
                continue;
            }
            break;
        } catch (const Error& e) {
            if (e.code() == Exit::server && !got_bytes && attempt < 4 && !sigint_received()) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
                continue;
            }
            if (e.code() == Exit::interrupted) throw;
            std::string hint = !e.hint().empty() ? e.hint()
                               : m.external()    ? ""
                                                 : fmt::format("see the server's log: llmctl logs {}", m.name);
            throw Error(e.code(), fmt::format("{}: {}", m.name, e.what()), hint);
        }
    }
    rec.status = res.status;
    if (res.status / 100 != 2)
        throw Error(Exit::failure, fmt::format("{} answered HTTP {}: {}", m.name, res.status, error_message(res.error_body)));
    if (o.no_stream) {
        auto j = nlohmann::json::parse(whole, nullptr, false);
        if (j.is_discarded()) throw Error(Exit::server, fmt::format("{} sent a malformed answer: {}", m.name, whole.substr(0, 200)));
        ChatDelta d = parse_chat_chunk(whole);
        if (!d.error.empty()) throw Error(Exit::failure, fmt::format("{}: {}", m.name, d.error));
        reply.text = d.content;
        reply.finish_reason = d.finish_reason;
        rec.first_token = since_began();
        if (d.has_usage) {
            reply.usage = {{"prompt_tokens", d.prompt_tokens}, {"completion_tokens", d.completion_tokens}};
            rec.tokens_in = d.prompt_tokens;
            rec.tokens_out = d.completion_tokens;
            rec.counted = false;
        }
        if (out) out->write(reply.text);
        return reply;
    }
    sse.finish();
    if (!stream_error.empty()) throw Error(Exit::failure, fmt::format("{}: {}", m.name, stream_error));
    if (!done && reply.finish_reason.empty())
        throw Error(Exit::server, fmt::format("{}: the stream ended without [DONE] (the server died or cut it)", m.name));
    return reply;
}

// ask_once, its outcome recorded (token accounting) once its slot is given back.
Reply ask(const Opts& o, const ModelConfig& m, const std::string& dir, const Config& cfg, Target& target, const Messages& msgs,
          const HttpTimeouts& timeouts, AnswerOut* out, const std::function<void()>& refresh_target, QueueLine& queue_line,
          std::optional<QueuedLease>& queued) {
    const auto began = std::chrono::steady_clock::now();
    RequestRecord rec;
    rec.model = m.name;
    rec.via = "chat";
    rec.counted = true; // (until the server's usage says)
    auto record = [&](int status, const char* outcome) {
        rec.status = status;
        rec.outcome = outcome;
        rec.duration = std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - began);
        record_requests(dir, {rec});
    };
    try {
        Reply r = ask_once(o, m, dir, cfg, target, msgs, timeouts, out, refresh_target, queue_line, queued, rec);
        record(200, "ok");
        return r;
    } catch (const Error& e) {
        if (e.code() == Exit::interrupted)
            record(499, "cancelled");
        else // (the server's own status when it answered one, else as serve would answer)
            record(rec.status / 100 > 2 ? rec.status : api_error_from(e).status, "error");
        throw;
    }
}

const char* const k_prompt_hint = "give the prompt as arguments or on stdin; without either, on a terminal, chat runs an interactive loop";

// The prompt of a one-shot chat: the arguments joined by spaces, else stdin when it is not a
// terminal (trailing newlines dropped); nullopt on a terminal: the interactive loop. A blank
// prompt is a usage error either way, found before any server is started.
std::optional<std::string> one_shot_prompt(const Opts& o) {
    std::string prompt;
    if (!o.prompt.empty()) {
        for (auto& p : o.prompt) prompt += (prompt.empty() ? "" : " ") + p;
        if (blank(prompt)) throw Error(Exit::usage, "the prompt is empty", k_prompt_hint);
        return as_utf8(std::move(prompt), "the prompt");
    }
    if (::isatty(STDIN_FILENO)) return std::nullopt;
    prompt.assign(std::istreambuf_iterator<char>(std::cin), {});
    while (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();
    if (blank(prompt)) throw Error(Exit::usage, "the prompt on stdin is empty", k_prompt_hint);
    return as_utf8(std::move(prompt), "the prompt on stdin");
}

using Turn = std::function<Reply(const std::string& prompt, AnswerOut* out)>;

// One prompt, one answer; Ctrl-C is exit 130.
int one_shot(const Opts& o, const ModelConfig& m, const Turn& turn, const std::string& prompt) {
    AnswerOut out;
    try {
        Reply r = turn(prompt, o.json ? nullptr : &out);
        if (sigint_received()) throw Error(Exit::interrupted, "interrupted");
        if (o.json)
            out.write(nlohmann::json{{"model", m.name}, {"content", r.text}, {"finish_reason", r.finish_reason}, {"usage", r.usage}}.dump(
                          -1, ' ', false, nlohmann::json::error_handler_t::replace) +
                      "\n");
        out.end_answer();
        return 0;
    } catch (const Error&) {
        out.break_line(); // the error goes below the partly printed answer, not after it
        throw;
    }
}

// The interactive loop (stdin is a terminal). A failed answer (the server said no, died,
// stalled, or Ctrl-C) is reported and the loop goes on with the conversation so far; the
// failed turn is not part of it. Ends with /exit or Ctrl-D: exit 0.
int interactive(const ModelConfig& m, const Turn& turn, const std::function<void()>& reset) {
    LineEditor editor;
    AnswerOut out;
    std::cerr << fmt::format("chat with {} (/reset forgets the conversation, /exit or Ctrl-D ends)\n", m.name);
    for (;;) {
        clear_sigint(); // a Ctrl-C that came after the last answer ended is not one for this line
        LineEditor::Result in = editor.read("> ", sigint_received);
        if (in.status == LineEditor::Status::end) return 0;
        if (in.status == LineEditor::Status::interrupted) continue; // the line is dropped; a new prompt
        std::string line = in.text;
        editor.remember(line);
        if (line == "/exit" || line == "/quit") return 0;
        if (line == "/reset") {
            reset();
            std::cerr << "(conversation forgotten)\n";
            continue;
        }
        if (blank(line)) continue;
        try {
            turn(as_utf8(std::move(line), "the line typed", "the terminal's character set is not UTF-8: set LANG to a UTF-8 locale"), &out);
            out.end_answer();
        } catch (const Error& e) {
            out.break_line();
            if (e.code() == Exit::interrupted)
                std::cerr << "(interrupted)\n";
            else
                print_error(e);
        }
    }
}

} // namespace

std::function<int()> setup_chat(CLI::App& app, Globals& g) {
    auto o = std::make_shared<Opts>();
    app.add_option("name", o->name, "Model to talk to")->required()->type_name("NAME");
    app.add_option("prompt", o->prompt, "The prompt, words after -- included (else stdin when not a terminal, else an interactive loop)")
        ->type_name("PROMPT");
    app.add_option("-s,--system", o->system, "System message");
    app.add_option("--max-tokens", o->max_tokens, "Upper bound on generated tokens (at least 1)")
        ->type_name("N")
        ->check(integer_between(1, 1 << 30));
    app.add_option("--temperature", o->temperature, "Sampling temperature (0 or more)")->type_name("T")->check(number_between(0, HUGE_VAL));
    app.add_option("--top-p", o->top_p, "Nucleus sampling (0 to 1)")->type_name("P")->check(number_between(0, 1));
    app.add_option("--seed", o->seed, "Sampling seed")->type_name("N")->check(integer_between(LONG_MIN, LONG_MAX));
    app.add_option("--stop", o->stop, "Stop sequence (repeatable)")->type_name("TEXT");
    app.add_flag("--no-stream", o->no_stream, "Ask for the whole answer at once");
    app.add_flag("--json", o->json, "Print the final response as a JSON object");
    app.add_flag("--no-start", o->no_start, "Do not start the server: exit 4 when it is not running");
    app.add_option("--timeout", o->timeout, "Total time limit for one answer (request_timeout; default none)")->type_name("DUR");
    app.add_option("--connect-timeout", o->connect_timeout, "Connect timeout (connect_timeout; default 5s)")->type_name("DUR");
    app.add_option("--first-token-timeout", o->first_token_timeout, "Time to the first token (first_token_timeout; default 300s)")
        ->type_name("DUR");
    app.add_option("--stall-timeout", o->stall_timeout, "Longest silence between tokens (stall_timeout; default 60s)")->type_name("DUR");
    app.add_option("--queue-timeout", o->queue_timeout, "Longest wait for a slot (queue_timeout; default none): exit 6")->type_name("DUR");
    CLI::Option* session_opt =
        app.add_option("--session", o->session, "Keep the conversation in the state db under this name")->type_name("NAME");
    app.footer("Slots: at most max_concurrent requests per model run at once, across all processes; a killed\n"
               "client never keeps a slot. Exit codes: 1 server said no, 4 unknown model / not running,\n"
               "5 server died or cut the stream, 6 timeout (queue, connect, first token, stall), 130 Ctrl-C.\n"
               "Examples:\n  llmctl chat echo \"hello\"\n  echo 'summarise this' | llmctl chat mymodel --max-tokens 200\n"
               "  llmctl chat mymodel --session work    # interactive on a terminal: /reset, /exit, Ctrl-D\n");
    return [o, &g, session_opt]() -> int {
        if (g.after_dashdash) o->prompt.insert(o->prompt.end(), g.after_dashdash->begin(), g.after_dashdash->end());
        Config cfg = load_config(g.config_path);
        std::string dir = resolve_state_dir(g.state_dir);
        auto mp = find_model(cfg, dir, o->name); // a config entry, or a running ad-hoc server
        if (!mp)
            throw Error(Exit::unknown,
                        fmt::format("unknown model \"{}\" in {}{}", o->name, cfg.source, did_you_mean_suffix(o->name, cfg.model_names())),
                        "list models with: llmctl config check");
        ModelConfig m = *mp;
        // Each phase: the flag, else the model's config key, else the built-in default.
        HttpTimeouts timeouts;
        auto pick = [](const std::string& flag, const std::string& v, Millis configured) {
            return v.empty() ? configured : duration_flag(flag, v);
        };
        timeouts.connect = pick("--connect-timeout", o->connect_timeout, m.connect_timeout);
        timeouts.first_byte = pick("--first-token-timeout", o->first_token_timeout, m.first_token_timeout);
        timeouts.stall = pick("--stall-timeout", o->stall_timeout, m.stall_timeout);
        Millis total = pick("--timeout", o->timeout, m.request_timeout);
        if (total.count() > 0) timeouts.total = total;
        if (!o->queue_timeout.empty()) o->queue_limit = duration_flag("--queue-timeout", o->queue_timeout); // before anything starts
        if (session_opt->count() > 0 && o->session.empty())
            throw Error(Exit::usage, "--session needs a name, not an empty string",
                        "session names are like model names: letters, digits, '.', '_', '-'");
        if (!o->session.empty() && !valid_model_name(o->session))
            throw Error(Exit::usage, fmt::format("bad session name \"{}\"", o->session),
                        "session names are like model names: letters, digits, '.', '_', '-'");
        o->system = as_utf8(std::move(o->system), "--system");
        for (auto& stop : o->stop) stop = as_utf8(std::move(stop), "--stop");
        std::optional<std::string> prompt = one_shot_prompt(*o); // nullopt: the interactive loop

        // Ctrl-C while the server starts kills us as it would `start` (crash-safe: the next
        // start or reap adopts it); from here on it cancels the request and frees the slot.
        o->quiet = g.verbosity < 0;
        // A one-shot chat queues its lease before it asks for the server, as serve's requests do:
        // a server started for it is in use at once (never idle, never reaped under it), and its
        // place in the queue is kept from its arrival. (The interactive loop does not: a lease
        // waiting while a person types would hold up everyone queued behind it.)
        QueueLine queue_line(!o->quiet && ::isatty(STDERR_FILENO));
        // An https model's connection is opened first: its helper's start and handshake run
        // while the slot is asked for (one that waited in the queue past the server's idle
        // limit is found closed, and dialled again).
        const auto began = std::chrono::steady_clock::now();
        if (m.external() && prompt) open_ahead(external_url(m), timeouts.connect);
        std::optional<QueuedLease> queued;
        if (prompt) queued.emplace(dir, slot_request(*o, m, cfg, queue_line));
        Target target = resolve_target_counted(*o, m, cfg, dir, g, began, prompt.has_value());
        catch_sigint();
        Messages history;
        if (!o->session.empty()) {
            ensure_state_dir(dir);
            history = load_checked_session(dir, o->session);
        }
        // A turn joins the conversation only once its answer is complete.
        Turn turn = [&](const std::string& text, AnswerOut* out) -> Reply {
            Messages msgs;
            if (!o->system.empty()) msgs.emplace_back("system", o->system);
            msgs.insert(msgs.end(), history.begin(), history.end());
            msgs.emplace_back("user", text);
            Reply r = ask(
                *o, m, dir, cfg, target, msgs, timeouts, out, [&] { target = resolve_target(*o, m, cfg, dir, g); }, queue_line, queued);
            history.emplace_back("user", text);
            history.emplace_back("assistant", r.text);
            if (!o->session.empty()) save_turn(dir, o->session, m.name, text, r.text);
            return r;
        };
        auto reset = [&] {
            history.clear();
            if (!o->session.empty()) forget_session(dir, o->session);
        };
        try {
            return prompt ? one_shot(*o, m, turn, *prompt) : interactive(m, turn, reset);
        } catch (const StdoutClosed&) {
            return 0;
        }
    };
}

} // namespace llmctl::cli
