#include "llmctl/clock_text.hpp"

#include <fmt/format.h>

namespace llmctl {

std::string clock_text(std::time_t t, Zone zone, const char* format) {
    std::tm tm{};
    if (zone == Zone::utc)
        ::gmtime_r(&t, &tm);
    else
        ::localtime_r(&t, &tm);
    char buf[64];
    const std::size_t n = std::strftime(buf, sizeof buf, format, &tm);
    return std::string(buf, n);
}

std::string clock_text_ms(std::int64_t ms, Zone zone) {
    const auto secs = static_cast<std::time_t>(ms / 1000);
    if (zone == Zone::utc) return fmt::format("{}.{:03}Z", clock_text(secs, zone, "%Y-%m-%dT%H:%M:%S"), ms % 1000);
    return fmt::format("{}.{:03}", clock_text(secs, zone, "%Y-%m-%d %H:%M:%S"), ms % 1000);
}

} // namespace llmctl
