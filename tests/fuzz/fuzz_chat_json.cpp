// libFuzzer target: a chat-completions response or stream chunk (JSON from a server we do not
// control) → a delta, or a clean llmctl::Error; an error body → a message. Nothing else may
// escape (a nlohmann::json exception would reach the user as an unexplained failure).
#include "llmctl/errors.hpp"
#include "llmctl/sse.hpp"

#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string body(reinterpret_cast<const char*>(data), size);
    try {
        llmctl::ChatDelta d = llmctl::parse_chat_chunk(body);
        if (d.prompt_tokens < 0 || d.completion_tokens < 0) std::abort();
    } catch (const llmctl::Error& e) {
        if (e.code() != llmctl::Exit::server) std::abort();
    }
    std::string m = llmctl::error_message(body);
    if (m.empty()) std::abort();
    return 0;
}
