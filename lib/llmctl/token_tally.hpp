#pragma once
// The tokens of an OpenAI answer, counted as it passes (token accounting, request_ledger.hpp):
// the server's own `usage` when it gives one (a whole body's; a stream's chunk that carries it:
// stream_options.include_usage, llama.cpp's last chunk), else the stream's chunks that carry
// text. Cheap on the relay's path: a chunk is parsed as JSON only when it holds "usage"; of a
// whole body only its last 4 KiB are kept, and only the "usage" object in them is parsed (OpenAI
// and llama.cpp put it at the end; an embeddings answer of megabytes costs nothing more).

#include "llmctl/sse.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llmctl {

class TokenTally {
public:
    explicit TokenTally(bool stream);
    TokenTally(const TokenTally&) = delete; // (its parser's callback holds `this`)
    TokenTally& operator=(const TokenTally&) = delete;

    // The answer's next bytes; true when they held the first token (a chunk with text, or a whole
    // body): the caller notes the time to first token.
    bool feed(std::string_view piece);
    // The end of the answer: reads a whole body's usage.
    void finish();

    std::optional<std::int64_t> tokens_in() const { return tokens_in_; }
    std::int64_t tokens_out() const { return usage_out_ ? *usage_out_ : chunks_; }
    bool counted() const { return !usage_out_; }

private:
    void event(const std::string& data);
    void read_usage(const std::string& json);
    bool stream_;
    SseParser sse_;
    std::string tail_; // a whole body's last bytes
    bool first_seen_ = false;
    std::int64_t chunks_ = 0;
    std::optional<std::int64_t> tokens_in_, usage_out_;
};

} // namespace llmctl
