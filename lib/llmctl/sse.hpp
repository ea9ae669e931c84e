#pragma once
// Server-sent events (the streaming format of /v1/chat/completions), parsed incrementally:
// correct at any chunk boundary. Handles `data:` lines (with or without the space), events of
// several data lines (joined with '\n'), comments (":…"), other fields (ignored), and LF, CRLF
// or CR line ends. An event is dispatched at a blank line.

#include <functional>
#include <string>
#include <string_view>

namespace llmctl {

class SseParser {
public:
    // Called with the data of each complete event ("[DONE]" included; the caller decides).
    explicit SseParser(std::function<void(const std::string& data)> on_event) : on_event_(std::move(on_event)) {}
    // Feeds the next chunk of the body, as it arrived.
    void feed(std::string_view chunk);
    // End of stream: dispatches a last event whose blank line never came.
    void finish();

private:
    void line(std::string_view l);
    std::function<void(const std::string&)> on_event_;
    std::string line_; // the unfinished line
    std::string data_; // data of the event being built
    bool has_data_ = false;
    bool last_cr_ = false; // previous chunk ended in '\r': a following '\n' belongs to it
};

// How many events end in `piece` (a line end followed by an empty line: "\n\n" or "\n\r\n"),
// counted up to `enough`; no copy, no state. Ends split across pieces are not seen: for gauging
// how many events one read found (the relay's gathering pause), not for parsing.
int sse_event_ends(std::string_view piece, int enough);

// One parsed chat-completions stream chunk: the text delta, and what else it carried.
struct ChatDelta {
    std::string content;
    std::string finish_reason; // "" until the model says why it stopped
    bool has_usage = false;
    long prompt_tokens = 0, completion_tokens = 0;
    std::string error; // {"error":{"message":…}} sent inside the stream
};

// Parses the JSON of one event (not "[DONE]"); throws Error(server) on malformed JSON.
ChatDelta parse_chat_chunk(const std::string& data);

// The message of an OpenAI-style error body ({"error":{"message":…}} or {"error":"…"}), or the
// body itself (shortened) when it is not one.
std::string error_message(const std::string& body);

} // namespace llmctl
