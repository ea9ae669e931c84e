// libFuzzer target: duration and size parsing. A parsed value formats to text that parses
// back to the same duration; sizes format to text that parses again.
#include "llmctl/units.hpp"

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    if (auto d = llmctl::parse_duration(text)) {
        if (d->count() < 0) std::abort();
        auto again = llmctl::parse_duration(llmctl::format_duration(*d));
        if (!again || *again != *d) std::abort();
    }
    if (auto s = llmctl::parse_size(text)) {
        if (!llmctl::parse_size(llmctl::format_size(*s))) std::abort();
    }
    return 0;
}
