#pragma once
// Human-friendly durations ("90s", "1h30m", "500ms", "0") and sizes ("64MiB", "10k").

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llmctl {

using Millis = std::chrono::milliseconds;

// Parses a duration: one or more <number><unit> groups (ms, s, m, h, d), or a bare "0".
// A bare number without unit means seconds. nullopt on anything else.
std::optional<Millis> parse_duration(std::string_view text);

// Parses a byte size: <number>[B], IEC <number>KiB|MiB|GiB|TiB (powers of 1024) or SI
// <number>kB|MB|GB|TB (powers of 1000), units in any case. A bare K, M, G or T is refused: it
// means 1000 to some and 1024 to others (see size_unit_is_ambiguous).
std::optional<std::uint64_t> parse_size(std::string_view text);

// True for "10M", "64k" …: a multiple without B or iB, which parse_size refuses.
bool size_unit_is_ambiguous(std::string_view text);

// "1h30m", "90s", "250ms", "0".
std::string format_duration(Millis d);

// How long ago `since` was at `now` (ms since the epoch), in whole seconds: "3m20s", "0s";
// "-" for none (ps's UPTIME and IDLE, top's).
std::string format_age(std::optional<std::int64_t> since, std::int64_t now);

// "64MiB", "1.5GiB", "512B".
std::string format_size(std::uint64_t bytes);

} // namespace llmctl
