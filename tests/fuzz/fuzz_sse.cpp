// libFuzzer target: the incremental SSE parser. The events must not depend on how the body
// was cut into chunks (first byte: chunk size), and every event's JSON is handled cleanly.
#include "llmctl/errors.hpp"
#include "llmctl/sse.hpp"

#include <cstdlib>
#include <string>
#include <vector>

namespace {
std::vector<std::string> events(std::string_view body, std::size_t chunk) {
    std::vector<std::string> out;
    llmctl::SseParser p([&](const std::string& d) { out.push_back(d); });
    for (std::size_t i = 0; i < body.size(); i += chunk) p.feed(body.substr(i, chunk));
    p.finish();
    return out;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::size_t chunk = data[0] % 16 + 1;
    std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    auto whole = events(body, body.size() + 1);
    auto cut = events(body, chunk);
    auto bytes = events(body, 1);
    if (whole != cut || whole != bytes) std::abort();
    for (const auto& e : whole) {
        if (e == "[DONE]") continue;
        try {
            (void)llmctl::parse_chat_chunk(e);
        } catch (const llmctl::Error& err) {
            if (err.code() != llmctl::Exit::server) std::abort();
        }
    }
    return 0;
}
